// Which data key a coordinator uses, and the check that it is the key its store was encrypted
// with: $LOOM_DATA_KEY, else the configured key command, else the key file (by default
// <data-dir>/data.key, made by `loom coordinator init`).
import { join } from 'node:path';
import {
  commandKeyProvider,
  DATA_KEY_ENV,
  type DataKey,
  type DataKeyProvider,
  envKeyProvider,
  fileKeyProvider,
  loadDataKey,
} from '../../shared/crypto/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { type CoordinatorDb, jsonSublevel, SUBLEVEL } from '../store/index.ts';

/** The default key file of a data dir. */
export function defaultDataKeyFile(dataDir: string): string {
  return join(dataDir, 'data.key');
}

/** Where the key comes from, by the precedence above. */
export function coordinatorKeyProvider(
  settings: { dataDir: string; dataKeyFile?: string; dataKeyCommand?: string },
  env: NodeJS.ProcessEnv = process.env,
): DataKeyProvider {
  if (env[DATA_KEY_ENV]) return envKeyProvider(DATA_KEY_ENV, env);
  if (settings.dataKeyCommand) return commandKeyProvider(settings.dataKeyCommand);
  return fileKeyProvider(settings.dataKeyFile ?? defaultDataKeyFile(settings.dataDir));
}

const KEY_ID = 'dataKeyId';

/**
 * Loads the key and checks it against the one the store records (recording it for a store that
 * has none yet). LOOM_ERR_DATA_KEY names the key the store needs when the key is missing or wrong.
 */
export async function openStoreDataKey(db: CoordinatorDb, provider: DataKeyProvider): Promise<DataKey> {
  const meta = jsonSublevel<string>(db.root, SUBLEVEL.meta);
  const expected = await meta.get(KEY_ID);
  let key: DataKey;
  try {
    key = await loadDataKey(provider);
  } catch (err) {
    if (expected === undefined || !(err instanceof LoomError)) throw err;
    throw new LoomError(
      'LOOM_ERR_DATA_KEY',
      `${err.message}; this store's weights are encrypted with data key ${expected}, which must be given ` +
        `(a key file, $${DATA_KEY_ENV} or a key command)`,
      { cause: err },
    );
  }
  if (expected === undefined) {
    await db.commit([{ type: 'put', sublevel: meta, key: KEY_ID, value: key.id }]);
  } else if (expected !== key.id) {
    throw new LoomError(
      'LOOM_ERR_DATA_KEY',
      `${provider.description} holds data key ${key.id}, but this store is encrypted with data key ${expected}`,
    );
  }
  return key;
}

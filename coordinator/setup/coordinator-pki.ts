// `loom coordinator init`: the CA (key 0600, never leaves the coordinator), the server
// certificate for the coordinator's names, the first admin token and, last, the settings file.
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  certificateFingerprint,
  createApiToken,
  createCA,
  decryptKeyPem,
  encryptKeyPem,
  isEncryptedKeyPem,
  issueServerCert,
  type KeyCertPair,
  writeKeyFile,
} from '../../certs/index.ts';
import { createDataKeyFile, DATA_KEY_ENV } from '../../shared/crypto/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { ensurePrivateDir } from '../../shared/store/index.ts';
import { CONFIG_FILE, COORDINATOR_DEFAULTS } from '../config/index.ts';
import { createLevelTokenStore } from '../directory/index.ts';
import { type CoordinatorPart, dbDir, findCoordinatorParts, openDataDirDb, pkiDir } from './data-dir.ts';
import { coordinatorKeyProvider, defaultDataKeyFile, openStoreDataKey } from './data-key.ts';

export interface CoordinatorPki {
  ca: KeyCertPair;
  server: KeyCertPair;
  caFingerprint: string;
}

const PKI = {
  caKey: 'ca-key.pem',
  caCert: 'ca-cert.pem',
  serverKey: 'server-key.pem',
  serverCert: 'server-cert.pem',
} as const;

export interface InitOptions {
  dataDir: string;
  /** Names and IPs the server certificate is valid for (default localhost, 127.0.0.1, ::1). */
  hosts?: string[];
  /**
   * Delete whatever part of a coordinator `dataDir` holds (CA, database, settings) and start
   * over. Default false: such a data dir is refused with LOOM_ERR_CONFLICT naming what it holds.
   */
  force?: boolean;
  /** With `force`, called with what is about to be deleted, before anything is. */
  beforeRemove?: (parts: CoordinatorPart[]) => void;
  /**
   * Encrypt the CA key on disk under this passphrase (at least 8 characters). Default none: the
   * key is a plain file readable by its owner only. Every later start then needs the passphrase.
   */
  caPassphrase?: string;
}

export interface InitResult {
  /** Printed once; only its hash is stored. */
  adminToken: string;
  caFingerprint: string;
  hosts: string[];
  /** What `force` deleted (relative paths); empty when the data dir held no coordinator. */
  removed: string[];
}

/** The first few paths, then how many more: a refusal stays one readable line. */
function listParts(parts: CoordinatorPart[], max = 6): string {
  const paths = parts.map((p) => p.path);
  return paths.length <= max
    ? paths.join(', ')
    : `${paths.slice(0, max).join(', ')} and ${paths.length - max} more`;
}

/** The refusal for a data dir that holds (part of) a coordinator, saying what to do instead. */
function refusal(dataDir: string, parts: CoordinatorPart[]): LoomError {
  const paths = parts.map((p) => p.path);
  const complete = paths.includes(CONFIG_FILE) && paths.some((p) => p.startsWith('pki/'));
  const found = `found ${listParts(parts)}`;
  const message = complete
    ? `${dataDir} already holds a coordinator (${found}); a new init would replace its CA and orphan ` +
      `every enrolled agent. Start it with "loom coordinator start --data-dir ${dataDir}" or choose ` +
      'another --data-dir; to delete it and start over, run init again with --force'
    : `${dataDir} holds part of a coordinator (${found}) but no complete one: an init was ` +
      `interrupted or a file was lost. If no agent ever enrolled with it, run init again with --force ` +
      `to delete it and start over; otherwise restore the missing files (${CONFIG_FILE} may hold just ` +
      '{"hosts": [...]}) instead';
  return new LoomError('LOOM_ERR_CONFLICT', message, { details: { found: paths } });
}

/**
 * Creates a coordinator in `dataDir`: PKI, then the database with the first admin token, then
 * coordinator.json, which marks the init as done. A data dir that holds any part of a
 * coordinator (PKI, database, settings) is refused with LOOM_ERR_CONFLICT naming what it found,
 * unless `force` is set: then `beforeRemove` is told what will be deleted, and it is. With
 * `force`, a database in use by a running coordinator is LOOM_ERR_STORE_LOCKED and nothing is
 * deleted.
 * @param opts.hosts default localhost, 127.0.0.1, ::1
 * @param opts.force default false
 */
export async function initCoordinator(opts: InitOptions): Promise<InitResult> {
  const dir = pkiDir(opts.dataDir);
  const dataDirStat = await stat(opts.dataDir).catch(() => undefined);
  if (dataDirStat && !dataDirStat.isDirectory()) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--data-dir ${opts.dataDir} is not a folder`);
  }
  const parts = await findCoordinatorParts(opts.dataDir);
  if (parts.length > 0) {
    if (!opts.force) throw refusal(opts.dataDir, parts);
    if (parts.some((p) => p.path === 'db/')) {
      // Deleting the files of a database a coordinator has open would leave it running on nothing.
      const db = await openDataDirDb(opts.dataDir);
      await db.close();
    }
    opts.beforeRemove?.(parts);
    const tops = new Set(parts.map((p) => p.path.split('/')[0]));
    for (const top of tops) await rm(join(opts.dataDir, top), { recursive: true, force: true });
  }
  const hosts = opts.hosts && opts.hosts.length > 0 ? opts.hosts : [...COORDINATOR_DEFAULTS.hosts];
  // Private whatever the umask, and also when the folder existed before with a wider mode.
  await ensurePrivateDir(opts.dataDir);
  await ensurePrivateDir(dir);
  await ensurePrivateDir(dbDir(opts.dataDir));
  const ca = createCA({ commonName: 'Loom CA' });
  const server = issueServerCert(ca, { hosts });
  await writeKeyFile(
    join(dir, PKI.caKey),
    opts.caPassphrase === undefined ? ca.keyPem : encryptKeyPem(ca.keyPem, opts.caPassphrase),
  );
  await writeFile(join(dir, PKI.caCert), ca.certPem);
  await writeKeyFile(join(dir, PKI.serverKey), server.keyPem);
  await writeFile(join(dir, PKI.serverCert), server.certPem);
  const token = createApiToken();
  // The data key that encrypts weights at rest: $LOOM_DATA_KEY when set, else a new key file.
  if (!process.env[DATA_KEY_ENV]) await createDataKeyFile(defaultDataKeyFile(opts.dataDir));
  const db = await openDataDirDb(opts.dataDir);
  try {
    await openStoreDataKey(db, coordinatorKeyProvider({ dataDir: opts.dataDir }));
    await createLevelTokenStore(db).addApiToken(
      {
        id: token.id,
        hash: token.hash,
        role: 'admin',
        name: 'initial admin',
        createdAt: new Date().toISOString(),
      },
      {
        audit: {
          actor: 'local: loom coordinator init',
          action: 'api-token.create',
          target: token.id,
          details: { name: 'initial admin', role: 'admin' },
        },
      },
    );
  } finally {
    await db.close();
  }
  // Written last and renamed into place, so coordinator.json exists only once everything else does.
  const configPath = join(opts.dataDir, CONFIG_FILE);
  await writeFile(`${configPath}.tmp`, `${JSON.stringify({ hosts }, null, 2)}\n`);
  await rename(`${configPath}.tmp`, configPath);
  return {
    adminToken: token.token,
    caFingerprint: certificateFingerprint(ca.certPem),
    hosts,
    removed: parts.map((p) => p.path),
  };
}

/** Environment variable holding the CA key's passphrase. */
export const CA_PASSPHRASE_ENV = 'LOOM_CA_PASSPHRASE';

/**
 * The CA passphrase: `$LOOM_CA_PASSPHRASE`, else the first line of `file`, else undefined.
 * LOOM_ERR_INVALID_CONFIG when the file cannot be read.
 */
export async function readCaPassphrase(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  if (env[CA_PASSPHRASE_ENV]) return env[CA_PASSPHRASE_ENV];
  if (file === undefined) return undefined;
  try {
    return (await readFile(file, 'utf8')).split('\n')[0].replace(/\r$/, '');
  } catch (err) {
    throw new LoomError('LOOM_ERR_INVALID_CONFIG', `cannot read the CA passphrase file ${file}`, {
      cause: err,
    });
  }
}

/**
 * Reads the PKI written by init; LOOM_ERR_INVALID_CONFIG when the folder was never initialised.
 * A CA key encrypted at init is opened with `caPassphrase` (LOOM_ERR_PKI without it or with a wrong one).
 */
export async function loadCoordinatorPki(dataDir: string, caPassphrase?: string): Promise<CoordinatorPki> {
  const dir = pkiDir(dataDir);
  let caKey: string;
  let caCert: string;
  let serverKey: string;
  let serverCert: string;
  try {
    [caKey, caCert, serverKey, serverCert] = await Promise.all(
      [PKI.caKey, PKI.caCert, PKI.serverKey, PKI.serverCert].map((f) => readFile(join(dir, f), 'utf8')),
    );
  } catch (err) {
    throw new LoomError(
      'LOOM_ERR_INVALID_CONFIG',
      `${dataDir} holds no coordinator; run "loom coordinator init --data-dir ${dataDir}" first`,
      { cause: err },
    );
  }
  if (isEncryptedKeyPem(caKey)) {
    if (caPassphrase === undefined) {
      throw new LoomError(
        'LOOM_ERR_PKI',
        `the CA key in ${dir} is encrypted: give its passphrase ($${CA_PASSPHRASE_ENV}, or the caPassphraseFile setting)`,
      );
    }
    caKey = decryptKeyPem(caKey, caPassphrase);
  }
  return {
    ca: { keyPem: caKey, certPem: caCert },
    server: { keyPem: serverKey, certPem: serverCert },
    caFingerprint: certificateFingerprint(caCert),
  };
}

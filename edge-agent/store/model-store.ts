// The agent's local model store: LevelDB at `<dataDir>/models` with meta, blob and active parts.
// Weights are encrypted at rest under the agent's data key; every put is one durable batch that
// advances a head file, so a damaged disk is noticed at the next start instead of serving less.
import { join } from 'node:path';
import { Level } from 'level';
import {
  createDataKeyFile,
  type DataKey,
  fileKeyProvider,
  isSealed,
  loadDataKey,
  openBlob,
  sealBlob,
  sealedKeyId,
} from '../../shared/crypto/index.ts';
import { causeWithCode, isLoomError, LoomError } from '../../shared/errors/index.ts';
import {
  clearDamage,
  type DurableHead,
  ensurePrivateDir,
  headProblems,
  levelRecoveryComplaints,
  readDamage,
  readHead,
  recordDamage,
  type StoreProblem,
  writeHead,
} from '../../shared/store/index.ts';
import {
  assertMatchesSpecs,
  blobToWeights,
  sha256Hex,
  specsOf,
  type WeightTensor,
  weightsToBlob,
} from '../../shared/tensors/index.ts';
import { checkId, nameKey, versionKey } from './keys.ts';
import { parseMeta } from './meta.ts';
import type { LocalModelStore, NewVersion, StoredVersion } from './types.ts';

/** Runs a LevelDB call, turning its errors (closed, I/O, corruption) into LOOM_ERR_STORE. */
async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isLoomError(err)) throw err;
    throw new LoomError('LOOM_ERR_STORE', `model store: ${what} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

const SEQ_KEY = 'commitSeq';

function blobContext(key: string): string {
  return `model ${key}`;
}

class LevelModelStore implements LocalModelStore {
  private readonly meta;
  private readonly blobs;
  private readonly pointers;
  private readonly bookkeeping;

  constructor(
    private readonly db: Level<string, string>,
    private readonly location: string,
    private readonly dataKey: DataKey,
    private seq: number,
    private readonly headAtOpen: DurableHead | undefined,
    private readonly openProblems: StoreProblem[],
  ) {
    this.meta = db.sublevel<string, string>('meta', { valueEncoding: 'utf8' });
    this.blobs = db.sublevel<string, Uint8Array>('blob', { valueEncoding: 'view' });
    this.pointers = db.sublevel<string, string>('active', { valueEncoding: 'utf8' });
    this.bookkeeping = db.sublevel<string, string>('store', { valueEncoding: 'utf8' });
  }

  async put(v: NewVersion): Promise<StoredVersion> {
    checkId(v.name, v.version);
    if (!v.architecture || typeof v.architecture !== 'object') {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'an architecture is required');
    }
    assertMatchesSpecs(specsOf(v.weights), v.weights);
    const blob = weightsToBlob(v.weights);
    const meta: StoredVersion = {
      name: v.name,
      version: v.version,
      architecture: v.architecture,
      sha256: sha256Hex(blob),
      receivedAt: new Date().toISOString(),
    };
    const key = versionKey(v.name, v.version);
    const next = this.seq + 1;
    await guard('put', () =>
      // Each operation is encoded by its sublevel, so one batch mixes text and binary values.
      this.db.batch<string, string | Uint8Array>(
        [
          { type: 'put', sublevel: this.meta, key, value: JSON.stringify(meta) },
          { type: 'put', sublevel: this.blobs, key, value: sealBlob(this.dataKey, blob, blobContext(key)) },
          { type: 'put', sublevel: this.pointers, key: nameKey(v.name), value: String(v.version) },
          { type: 'put', sublevel: this.bookkeeping, key: SEQ_KEY, value: String(next) },
        ],
        { sync: true },
      ),
    );
    this.seq = next;
    await writeHead(this.location, { commitSeq: next, writtenAt: new Date().toISOString() }).catch(
      () => undefined,
    );
    return meta;
  }

  async get(name: string, version: number): Promise<{ meta: StoredVersion; weights: WeightTensor[] }> {
    checkId(name, version);
    const key = versionKey(name, version);
    const text = await guard('get', () => this.meta.get(key));
    if (text === undefined) {
      throw new LoomError(
        'LOOM_ERR_NOT_FOUND',
        `model "${name}" version ${version} is not in the local store`,
      );
    }
    const meta = parseMeta(text, key);
    const sealed = await guard('get', () => this.blobs.get(key));
    if (sealed === undefined) {
      throw new LoomError('LOOM_ERR_STORE', `model "${name}" version ${version} has metadata but no weights`);
    }
    let blob: Buffer;
    try {
      blob = openBlob(this.dataKey, sealed, blobContext(key));
    } catch (err) {
      if (!isLoomError(err, 'LOOM_ERR_INTEGRITY')) throw err;
      throw new LoomError(
        'LOOM_ERR_INTEGRITY',
        `model "${name}" version ${version}: stored weights do not authenticate; the copy is damaged`,
        { cause: err },
      );
    }
    if (sha256Hex(blob) !== meta.sha256) {
      throw new LoomError(
        'LOOM_ERR_INTEGRITY',
        `model "${name}" version ${version}: stored weights do not match their SHA-256; the copy is damaged`,
      );
    }
    return { meta, weights: blobToWeights(blob) };
  }

  async list(): Promise<StoredVersion[]> {
    return guard('list', async () => {
      const out: StoredVersion[] = [];
      for await (const [key, text] of this.meta.iterator()) out.push(parseMeta(text, key));
      return out;
    });
  }

  async active(name: string): Promise<StoredVersion | undefined> {
    checkId(name);
    const pointer = await guard('active', () => this.pointers.get(nameKey(name)));
    return pointer === undefined ? undefined : this.metaAt(name, pointer);
  }

  async activeAll(): Promise<StoredVersion[]> {
    return guard('activeAll', async () => {
      const out: StoredVersion[] = [];
      for await (const [key, pointer] of this.pointers.iterator()) {
        out.push(await this.metaAt(decodeURIComponent(key), pointer));
      }
      return out;
    });
  }

  async check(options: { full?: boolean } = {}): Promise<StoreProblem[]> {
    const problems: StoreProblem[] = [...this.openProblems, ...headProblems(this.headAtOpen, this.seq)];
    await guard('check', async () => {
      const metas = new Map<string, string>();
      for await (const [key, text] of this.meta.iterator()) {
        metas.set(key, text);
        try {
          parseMeta(text, key);
        } catch (err) {
          problems.push({ kind: 'record-damaged', message: (err as Error).message });
          continue;
        }
        const sealed = await this.blobs.get(key);
        if (sealed === undefined) {
          problems.push({ kind: 'weights-missing', message: `stored version ${key} has no weights` });
        } else if (options.full) {
          const [name, padded] = [
            decodeURIComponent(key.slice(0, key.lastIndexOf('/'))),
            key.slice(key.lastIndexOf('/') + 1),
          ];
          try {
            await this.get(name, Number(padded));
          } catch (err) {
            problems.push({
              kind: 'weights-damaged',
              message: `stored version ${key}: ${(err as Error).message}`,
            });
          }
        }
      }
      for await (const [key, pointer] of this.pointers.iterator()) {
        const version = Number(pointer);
        const target = Number.isSafeInteger(version)
          ? versionKey(decodeURIComponent(key), version)
          : undefined;
        if (target === undefined || !metas.has(target)) {
          problems.push({
            kind: 'active-missing',
            message: `model "${decodeURIComponent(key)}" is set to serve version ${pointer}, which the store does not hold`,
          });
        }
      }
    });
    return problems;
  }

  async repair(): Promise<{ removed: string[] }> {
    const removed: string[] = [];
    await guard('repair', async () => {
      const healthy = new Map<string, number[]>();
      for await (const [key, text] of this.meta.iterator()) {
        let meta: StoredVersion;
        try {
          meta = parseMeta(text, key);
          await this.get(meta.name, meta.version);
        } catch {
          // Damaged, or weights missing: the coordinator sends a good copy again when it learns
          // (from the next hello) that this version is not here.
          await this.db.batch<string, string | Uint8Array>(
            [
              { type: 'del', sublevel: this.meta, key },
              { type: 'del', sublevel: this.blobs, key },
            ],
            { sync: true },
          );
          removed.push(key);
          continue;
        }
        healthy.set(meta.name, [...(healthy.get(meta.name) ?? []), meta.version]);
      }
      for await (const [key, pointer] of this.pointers.iterator()) {
        const name = decodeURIComponent(key);
        const versions = healthy.get(name) ?? [];
        if (versions.includes(Number(pointer))) continue;
        // Serve the newest intact version of the model, or nothing of it.
        await this.db.batch<string, string>(
          [
            versions.length > 0
              ? { type: 'put', sublevel: this.pointers, key, value: String(Math.max(...versions)) }
              : { type: 'del', sublevel: this.pointers, key },
          ],
          { sync: true },
        );
        removed.push(`active ${name}`);
      }
    });
    await clearDamage(this.location);
    // The repaired store is the new baseline.
    await writeHead(this.location, { commitSeq: this.seq, writtenAt: new Date().toISOString() }).catch(
      () => undefined,
    );
    return { removed };
  }

  async setActive(name: string, version: number): Promise<void> {
    checkId(name, version);
    const key = versionKey(name, version);
    if ((await guard('setActive', () => this.meta.get(key))) === undefined) {
      throw new LoomError(
        'LOOM_ERR_NOT_FOUND',
        `model "${name}" version ${version} is not in the local store`,
      );
    }
    const next = this.seq + 1;
    await guard('setActive', () =>
      this.db.batch<string, string>(
        [
          { type: 'put', sublevel: this.pointers, key: nameKey(name), value: String(version) },
          { type: 'put', sublevel: this.bookkeeping, key: SEQ_KEY, value: String(next) },
        ],
        { sync: true },
      ),
    );
    this.seq = next;
    await writeHead(this.location, { commitSeq: next, writtenAt: new Date().toISOString() }).catch(
      () => undefined,
    );
  }

  async prune(name: string, keep: number): Promise<number[]> {
    checkId(name);
    if (!Number.isSafeInteger(keep) || keep < 1) throw new TypeError('keep must be a positive integer');
    const active = (await this.active(name))?.version;
    const versions = (await this.list())
      .filter((v) => v.name === name && v.version !== active)
      .sort((a, b) =>
        a.receivedAt < b.receivedAt ? 1 : a.receivedAt > b.receivedAt ? -1 : b.version - a.version,
      );
    const doomed = versions.slice(Math.max(0, keep - (active === undefined ? 0 : 1))).map((v) => v.version);
    if (doomed.length === 0) return [];
    await guard('prune', () =>
      this.db.batch<string, string | Uint8Array>(
        doomed.flatMap((version) => {
          const key = versionKey(name, version);
          return [
            { type: 'del' as const, sublevel: this.meta, key },
            { type: 'del' as const, sublevel: this.blobs, key },
          ];
        }),
        { sync: true },
      ),
    );
    return doomed;
  }

  async close(): Promise<void> {
    await guard('close', () => this.db.close());
  }

  /** Metadata an active pointer refers to; a dangling pointer means the store is inconsistent. */
  private async metaAt(name: string, pointer: string): Promise<StoredVersion> {
    const version = Number(pointer);
    const key = Number.isSafeInteger(version) ? versionKey(name, version) : undefined;
    const text = key === undefined ? undefined : await this.meta.get(key);
    if (key === undefined || text === undefined) {
      throw new LoomError('LOOM_ERR_STORE', `active pointer of model "${name}" refers to a missing version`);
    }
    return parseMeta(text, key);
  }
}

/** Options of `openLocalModelStore`. */
export interface LocalModelStoreOptions {
  /** The key weights are encrypted with. Default: `<dir>/data.key`, created on first use. */
  dataKey?: DataKey;
}

/** The default data key file of an agent data dir. */
export function agentDataKeyFile(dir: string): string {
  return join(dir, 'data.key');
}

/**
 * Opens (creating if needed) the local model store at `<dir>/models`, private to its owner.
 * Throws LOOM_ERR_STORE when it cannot be opened, e.g. because another process holds it, and
 * LOOM_ERR_DATA_KEY when no usable key is given and `<dir>/data.key` cannot be read.
 * @param options.dataKey default `<dir>/data.key`
 */
export async function openLocalModelStore(
  dir: string,
  options: LocalModelStoreOptions = {},
): Promise<LocalModelStore> {
  const location = join(dir, 'models');
  const db = new Level<string, string>(location, { valueEncoding: 'utf8' });
  try {
    await ensurePrivateDir(dir);
    await ensurePrivateDir(location);
    await db.open();
  } catch (err) {
    if (causeWithCode(err, 'LEVEL_LOCKED')) {
      throw new LoomError(
        'LOOM_ERR_STORE_LOCKED',
        `the model store in ${location} is in use by another process — is an agent already running on this data dir? Stop it first`,
        { cause: err },
      );
    }
    throw new LoomError('LOOM_ERR_STORE', `cannot open model store ${location}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    const dataKey = options.dataKey ?? (await defaultKey(dir));
    // A key that does not open what is stored is refused now, not at the first read.
    const blobs = db.sublevel<string, Uint8Array>('blob', { valueEncoding: 'view' });
    const [first] = await blobs.values({ limit: 1 }).all();
    if (first !== undefined && isSealed(first) && sealedKeyId(first) !== dataKey.id) {
      throw new LoomError(
        'LOOM_ERR_DATA_KEY',
        `the model store in ${location} is encrypted with data key ${sealedKeyId(first)}, not with key ${dataKey.id}; ` +
          `give the right key (${agentDataKeyFile(dir)} or $LOOM_DATA_KEY)`,
      );
    }
    await recordDamage(
      location,
      (await levelRecoveryComplaints(location)).map((line) => ({
        kind: 'level-recovery',
        message: `LevelDB dropped data it could not read while opening: ${line}`,
      })),
    );
    const bookkeeping = db.sublevel<string, string>('store', { valueEncoding: 'utf8' });
    const seq = Number((await bookkeeping.get(SEQ_KEY)) ?? 0);
    return new LevelModelStore(
      db,
      location,
      dataKey,
      seq,
      await readHead(location),
      await readDamage(location),
    );
  } catch (err) {
    await db.close();
    throw err;
  }
}

async function defaultKey(dir: string): Promise<DataKey> {
  const file = agentDataKeyFile(dir);
  try {
    return await loadDataKey(fileKeyProvider(file));
  } catch (err) {
    if (!isLoomError(err, 'LOOM_ERR_DATA_KEY') || !/does not exist/.test(err.message)) throw err;
    return createDataKeyFile(file);
  }
}

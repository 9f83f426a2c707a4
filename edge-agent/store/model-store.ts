// The agent's local model store: LevelDB at `<dataDir>/models` with meta, blob and active parts.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
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

class LevelModelStore implements LocalModelStore {
  private readonly meta;
  private readonly blobs;
  private readonly pointers;

  constructor(private readonly db: Level<string, string>) {
    this.meta = db.sublevel<string, string>('meta', { valueEncoding: 'utf8' });
    this.blobs = db.sublevel<string, Uint8Array>('blob', { valueEncoding: 'view' });
    this.pointers = db.sublevel<string, string>('active', { valueEncoding: 'utf8' });
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
    await guard('put', () =>
      // Each operation is encoded by its sublevel, so one batch mixes text and binary values.
      this.db.batch<string, string | Uint8Array>(
        [
          { type: 'put', sublevel: this.meta, key, value: JSON.stringify(meta) },
          { type: 'put', sublevel: this.blobs, key, value: blob },
          { type: 'put', sublevel: this.pointers, key: nameKey(v.name), value: String(v.version) },
        ],
        {},
      ),
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
    const blob = await guard('get', () => this.blobs.get(key));
    if (blob === undefined) {
      throw new LoomError('LOOM_ERR_STORE', `model "${name}" version ${version} has metadata but no weights`);
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

/**
 * Opens (creating if needed) the local model store at `<dir>/models`. Throws LOOM_ERR_STORE
 * when it cannot be opened, e.g. because another process holds it.
 */
export async function openLocalModelStore(dir: string): Promise<LocalModelStore> {
  const location = join(dir, 'models');
  const db = new Level<string, string>(location, { valueEncoding: 'utf8' });
  try {
    await mkdir(location, { recursive: true });
    await db.open();
  } catch (err) {
    const locked = (err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED';
    throw new LoomError(
      'LOOM_ERR_STORE',
      locked
        ? `model store ${location} is already open (by another agent process or store)`
        : `cannot open model store ${location}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return new LevelModelStore(db);
}

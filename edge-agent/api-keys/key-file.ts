// The site's own API keys for the agent's inference API, in one file in the agent data dir:
// hashes only (a key is shown once, when made), mode 0600, replaced atomically under a lock so
// two `loom agent api-key` commands at once cannot lose each other's change.
import { open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createApiToken } from '../../certs/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { writeFileAtomic } from '../../shared/fs/index.ts';

/** One key as stored: its secret only as a SHA-256 hash. */
export interface ApiKeyRecord {
  /** 12 hex digits; the `<id>` of `loom_<id>_<secret>`. */
  id: string;
  name: string;
  /** SHA-256 hex of the secret. */
  hash: string;
  createdAt: string;
  revoked: boolean;
  revokedAt?: string;
}

/** A key as listed: everything but its hash. */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'hash'>;

const FILE = 'inference-api-keys.json';
const FORMAT_VERSION = 1;
/** How long a command waits for another one's lock, and when a lock is taken for abandoned. */
const LOCK_WAIT_MS = 10_000;
const LOCK_STALE_MS = 30_000;
const NAME_MAX = 64;

/** Where the keys of the agent in `dataDir` are kept. */
export function apiKeyFilePath(dataDir: string): string {
  return join(dataDir, FILE);
}

function damaged(path: string, reason: string): LoomError {
  return new LoomError('LOOM_ERR_INVALID_CONFIG', `${path} is damaged: ${reason}`);
}

function parseRecord(raw: unknown, path: string, i: number): ApiKeyRecord {
  const r = raw as Partial<ApiKeyRecord> | null;
  if (
    !r ||
    typeof r !== 'object' ||
    typeof r.id !== 'string' ||
    !/^[0-9a-f]{12}$/.test(r.id) ||
    typeof r.hash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(r.hash) ||
    typeof r.name !== 'string' ||
    typeof r.createdAt !== 'string' ||
    typeof r.revoked !== 'boolean'
  ) {
    throw damaged(path, `key ${i} is not {id, name, hash, createdAt, revoked}`);
  }
  return {
    id: r.id,
    name: r.name,
    hash: r.hash,
    createdAt: r.createdAt,
    revoked: r.revoked,
    ...(typeof r.revokedAt === 'string' ? { revokedAt: r.revokedAt } : {}),
  };
}

/**
 * The keys in the file at `path`; none when there is no file. LOOM_ERR_INVALID_CONFIG when the
 * file is not a key file.
 */
export async function readApiKeyFile(path: string): Promise<ApiKeyRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new LoomError('LOOM_ERR_INVALID_CONFIG', `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let json: { version?: unknown; keys?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch (err) {
    throw damaged(path, (err as Error).message);
  }
  if (!json || json.version !== FORMAT_VERSION || !Array.isArray(json.keys)) {
    throw damaged(path, `expected {"version": ${FORMAT_VERSION}, "keys": [...]}`);
  }
  return json.keys.map((k, i) => parseRecord(k, path, i));
}

function info(record: ApiKeyRecord): ApiKeyInfo {
  const { hash: _hash, ...rest } = record;
  return rest;
}

async function assertDataDir(dataDir: string): Promise<void> {
  const s = await stat(dataDir).catch(() => undefined);
  if (!s?.isDirectory()) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--data-dir ${dataDir} is not a folder`);
  }
}

/** Runs `change` with the key file's lock held; a lock older than 30 s is taken for abandoned. */
async function withLock<T>(path: string, change: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lock, 'wx', 0o600);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > LOCK_STALE_MS) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new LoomError(
          'LOOM_ERR_CONFLICT',
          `${lock} is held by another command; try again, or delete it if none is running`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await change();
  } finally {
    await rm(lock, { force: true });
  }
}

async function writeKeys(path: string, keys: ApiKeyRecord[]): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify({ version: FORMAT_VERSION, keys }, null, 2)}\n`);
}

/**
 * Makes a new key for the inference API of the agent in `dataDir` and returns it with its
 * listing. The key (`loom_<id>_<secret>`, 256 random bits of secret) is in the return value
 * only: the file keeps its SHA-256. LOOM_ERR_INVALID_ARGUMENT for a missing folder or a name
 * longer than 64 characters or holding control characters.
 * @param options.name default 'inference client'
 */
export async function createApiKey(
  dataDir: string,
  options: { name?: string; now?: Date } = {},
): Promise<{ key: string; info: ApiKeyInfo }> {
  const name = options.name ?? 'inference client';
  if (name.length === 0 || name.length > NAME_MAX || /\p{Cc}/u.test(name)) {
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      `--name must be 1 to ${NAME_MAX} characters without control characters`,
    );
  }
  await assertDataDir(dataDir);
  const path = apiKeyFilePath(dataDir);
  return withLock(path, async () => {
    const keys = await readApiKeyFile(path);
    let token = createApiToken();
    // 48 random bits make a clash unlikely, not impossible; ids must be unique.
    while (keys.some((k) => k.id === token.id)) token = createApiToken();
    const record: ApiKeyRecord = {
      id: token.id,
      name,
      hash: token.hash,
      createdAt: (options.now ?? new Date()).toISOString(),
      revoked: false,
    };
    await writeKeys(path, [...keys, record]);
    return { key: token.token, info: info(record) };
  });
}

/** Every key of the agent in `dataDir`, oldest first, without hashes. */
export async function listApiKeys(dataDir: string): Promise<ApiKeyInfo[]> {
  await assertDataDir(dataDir);
  return (await readApiKeyFile(apiKeyFilePath(dataDir))).map(info);
}

/**
 * Revokes key `id`: a running agent refuses it from its next look at the file (within about a
 * second). Revoking a revoked key changes nothing. LOOM_ERR_NOT_FOUND for an unknown id.
 */
export async function revokeApiKey(dataDir: string, id: string, now = new Date()): Promise<ApiKeyInfo> {
  await assertDataDir(dataDir);
  const path = apiKeyFilePath(dataDir);
  return withLock(path, async () => {
    const keys = await readApiKeyFile(path);
    const found = keys.find((k) => k.id === id);
    if (!found) throw new LoomError('LOOM_ERR_NOT_FOUND', `no API key ${JSON.stringify(id)} in ${path}`);
    if (found.revoked) return info(found);
    const revoked: ApiKeyRecord = { ...found, revoked: true, revokedAt: now.toISOString() };
    await writeKeys(
      path,
      keys.map((k) => (k.id === id ? revoked : k)),
    );
    return info(revoked);
  });
}

// The data key that encrypts weights at rest, and where it comes from: a key file (mode 0600), an
// environment variable, a command (how a cloud KMS or a secrets manager hands it over), or any
// other `DataKeyProvider`. The key itself is never logged; its id (a hash) names it in messages.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LoomError } from '../errors/index.ts';

/** A loaded 256-bit data key and its id. */
export interface DataKey {
  /** 16 hex characters derived from the key by a one-way hash: safe to log and to store. */
  readonly id: string;
  readonly key: Buffer;
}

/** Where a data key comes from. A KMS integration implements this (unwrapping a stored key, say). */
export interface DataKeyProvider {
  /** Names the source in messages, e.g. `key file /etc/loom/data.key`. Never the key. */
  readonly description: string;
  /** The 32-byte key; throws LOOM_ERR_DATA_KEY when it cannot be had. */
  load(): Promise<Buffer>;
}

/** Environment variable holding a base64 data key. */
export const DATA_KEY_ENV = 'LOOM_DATA_KEY';

const KEY_BYTES = 32;

function keyError(message: string, cause?: unknown): LoomError {
  return new LoomError('LOOM_ERR_DATA_KEY', message, cause === undefined ? {} : { cause });
}

/** The id of a key: the first 16 hex digits of a domain-separated SHA-256. */
export function dataKeyId(key: Uint8Array): string {
  return createHash('sha256').update('loom data key id\0').update(key).digest('hex').slice(0, 16);
}

/** Parses a key as text: base64 (or hex) of 32 bytes, surrounding whitespace ignored. */
export function parseDataKey(text: string, source: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  const bytes = Buffer.from(t, 'base64');
  // Node's base64 decoder skips what it cannot read; re-encoding tells a real key from noise.
  if (bytes.length !== KEY_BYTES || bytes.toString('base64') !== t) {
    throw keyError(
      `${source} does not hold a 256-bit key (32 bytes as base64, e.g. from "openssl rand -base64 32", or hex)`,
    );
  }
  return bytes;
}

/** Loads a key from `provider`. */
export async function loadDataKey(provider: DataKeyProvider): Promise<DataKey> {
  const key = await provider.load();
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw keyError(`${provider.description} did not give a 256-bit key`);
  }
  return { id: dataKeyId(key), key };
}

/** A key made on the spot (tests, and stores created in memory). */
export function randomDataKey(): DataKey {
  const key = randomBytes(KEY_BYTES);
  return { id: dataKeyId(key), key };
}

/**
 * A key file: base64 text, readable by its owner only. A file group- or world-readable is refused,
 * as ssh refuses such a private key.
 */
export function fileKeyProvider(path: string): DataKeyProvider {
  return {
    description: `key file ${path}`,
    async load() {
      let text: string;
      try {
        const info = await stat(path);
        if ((info.mode & 0o077) !== 0) {
          throw keyError(
            `key file ${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`,
          );
        }
        text = await readFile(path, 'utf8');
      } catch (err) {
        if (err instanceof LoomError) throw err;
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        throw keyError(missing ? `key file ${path} does not exist` : `cannot read key file ${path}`, err);
      }
      return parseDataKey(text, `key file ${path}`);
    },
  };
}

/** A key in an environment variable (default LOOM_DATA_KEY), base64. */
export function envKeyProvider(
  name: string = DATA_KEY_ENV,
  env: NodeJS.ProcessEnv = process.env,
): DataKeyProvider {
  return {
    description: `$${name}`,
    async load() {
      const value = env[name];
      if (!value) throw keyError(`$${name} is not set`);
      return parseDataKey(value, `$${name}`);
    },
  };
}

/**
 * A key printed (base64) by a command run through `/bin/sh -c`, such as a KMS client that
 * decrypts a wrapped key: `aws kms decrypt ... --query Plaintext --output text`.
 */
export function commandKeyProvider(command: string, timeoutMs = 30_000): DataKeyProvider {
  return {
    description: `key command "${command}"`,
    load: () =>
      new Promise<Buffer>((resolve, reject) => {
        execFile(
          '/bin/sh',
          ['-c', command],
          { timeout: timeoutMs, maxBuffer: 64 * 1024 },
          (err, stdout, stderr) => {
            if (err) {
              const detail = String(stderr).trim().split('\n').at(-1) ?? '';
              reject(keyError(`key command "${command}" failed${detail ? `: ${detail}` : ''}`, err));
              return;
            }
            try {
              resolve(parseDataKey(String(stdout), `the output of key command "${command}"`));
            } catch (parseErr) {
              reject(parseErr);
            }
          },
        );
      }),
  };
}

/**
 * Creates a new key file at `path` (mode 0600, its folder 0700 when made here); refuses to
 * replace an existing file, whose key may be the only one that opens a store.
 */
export async function createDataKeyFile(path: string): Promise<DataKey> {
  const key = randomBytes(KEY_BYTES);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw keyError(
        `key file ${path} already exists; it may be the only key that opens a store, so it is not replaced`,
      );
    }
    throw keyError(`cannot create key file ${path}`, err);
  }
  try {
    await handle.writeFile(`${key.toString('base64')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { id: dataKeyId(key), key };
}

// Replaces a small file in one step: a crash leaves either the old contents or the new, never
// half of them, and the file is never readable by others while it is written.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Options of `writeFileAtomic`. */
export interface AtomicWriteOptions {
  /** Mode of the file. Default 0o600 (owner only). */
  mode?: number;
}

/**
 * Writes `data` to a new file beside `path`, flushes it to disk, then renames it over `path`
 * and flushes the folder, so readers see the old file or the whole new one. The file gets
 * `mode` (default 0o600) before any byte is written. The folder must exist.
 * @param options.mode default 0o600
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('path must be a non-empty string');
  const mode = options.mode ?? 0o600;
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      // The open mode is masked by the umask; set it exactly before the contents go in.
      await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  // The rename is durable only once the folder's entry is on disk too.
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

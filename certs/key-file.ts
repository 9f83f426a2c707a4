// Writes private keys to disk readable by the owner only.
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `pem` to `path` with mode 0600, creating missing parent directories with mode 0700.
 * An existing file is truncated and its mode tightened to 0600 before the key is written.
 */
export async function writeKeyFile(path: string, pem: string): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('path must be a non-empty string');
  if (typeof pem !== 'string') throw new TypeError('pem must be a string');
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const handle = await open(path, 'w', 0o600);
  try {
    // The open mode only applies to new files and is masked by umask; chmod before writing so an old
    // world-readable file never holds the key.
    await handle.chmod(0o600);
    await handle.writeFile(pem, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// Key layout of the store. Versions are zero-padded so LevelDB's byte order is numeric order.
import { LoomError } from '../../shared/errors/index.ts';

const MAX_NAME = 256;

/** Checks a model name and version given by a caller; LOOM_ERR_INVALID_ARGUMENT otherwise. */
export function checkId(name: unknown, version?: unknown): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `model name must be 1 to ${MAX_NAME} characters`);
  }
  if (version !== undefined && (!Number.isSafeInteger(version) || (version as number) < 0)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `model version must be a non-negative integer`);
  }
}

/** Names are escaped so no name can contain the separator and collide with another key. */
export function nameKey(name: string): string {
  return encodeURIComponent(name);
}

/** Key of one version: escaped name, `/`, version padded to 16 digits (any safe integer). */
export function versionKey(name: string, version: number): string {
  return `${nameKey(name)}/${String(version).padStart(16, '0')}`;
}

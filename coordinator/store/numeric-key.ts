// Zero-padded number keys, so LevelDB's byte order matches numeric order (9 before 10).
import { LoomError } from '../../shared/errors/index.ts';

/** Digits in a numeric key: enough for every safe integer, so padding never overflows. */
export const NUMERIC_KEY_WIDTH = 16;

/** `n` as a fixed-width decimal key; throws LOOM_ERR_INVALID_ARGUMENT unless `n` is a non-negative safe integer. */
export function numericKey(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `${String(n)} is not a non-negative integer`);
  }
  return String(n).padStart(NUMERIC_KEY_WIDTH, '0');
}

/** Reverse of `numericKey`. */
export function parseNumericKey(key: string): number {
  return Number.parseInt(key, 10);
}

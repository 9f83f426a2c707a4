// The one shape of every fuzz property: the function under test returns a value, or throws a
// LoomError with one of the codes it documents. Anything else (a TypeError, a RangeError, a
// LoomError with another code) is the crash the fuzzer is looking for.
import { ERROR_CODES } from '../../../shared/errors/codes.ts';
import { isLoomError, type LoomError, type LoomErrorCode } from '../../../shared/errors/index.ts';

/** What a call under test did: returned `value`, or threw the documented `error`. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: LoomError };

function unexpected(err: unknown, codes: readonly LoomErrorCode[]): Error {
  const got = isLoomError(err)
    ? `LoomError ${err.code}: ${err.message}`
    : err instanceof Error
      ? `${err.name}: ${err.message}`
      : `a thrown ${typeof err}: ${String(err)}`;
  return new Error(`expected a value or a LoomError ${codes.join(' / ')}, got ${got}`, { cause: err });
}

function documented(err: unknown, codes: readonly LoomErrorCode[]): LoomError {
  if (!isLoomError(err) || !codes.includes(err.code)) throw unexpected(err, codes);
  if (!(err.code in ERROR_CODES))
    throw new Error(`LoomError code ${err.code} is not in shared/errors/codes.ts`);
  if (typeof err.message !== 'string' || err.message.length === 0) {
    throw new Error(`LoomError ${err.code} has an empty message`);
  }
  return err;
}

/** Runs `fn`; a value or a LoomError with one of `codes` is an outcome, anything else throws. */
export function outcomeOf<T>(fn: () => T, codes: readonly LoomErrorCode[]): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    return { ok: false, error: documented(err, codes) };
  }
}

/** `outcomeOf` for async functions. */
export async function asyncOutcomeOf<T>(
  fn: () => Promise<T>,
  codes: readonly LoomErrorCode[],
): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return { ok: false, error: documented(err, codes) };
  }
}

/** Throws `message` unless `condition` holds; properties read as a list of these. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

// Turns low-level database failures into LOOM_ERR_STORE while letting Loom's own errors through.
import { isLoomError, LoomError } from '../../shared/errors/index.ts';

/**
 * Runs `fn`; any error that is not already a LoomError (an I/O failure, a closed database, a value
 * that cannot be encoded) becomes LOOM_ERR_STORE with `what` in its message and the original as cause.
 */
export async function withStoreErrors<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isLoomError(err)) throw err;
    throw new LoomError('LOOM_ERR_STORE', `store failure while trying to ${what}`, { cause: err });
  }
}

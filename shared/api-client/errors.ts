// An answer of the operator API that is not a success, as the LoomError a caller can branch on.
import { ERROR_CODES, LoomError, type LoomErrorCode } from '../errors/index.ts';

/**
 * `{"error": {"code", "message"}}` becomes a LoomError with that code and message (and
 * `details.status`) when the code is one this build knows; anything else is LOOM_ERR_NETWORK
 * naming the status, with a remote code in `details.remoteCode`. A peer cannot invent a code.
 */
export function errorFromResponse(what: string, status: number, text: string): LoomError {
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (error && typeof error === 'object' && typeof error.code === 'string') {
    const message = typeof error.message === 'string' ? error.message : `HTTP ${status}`;
    if (Object.hasOwn(ERROR_CODES, error.code)) {
      return new LoomError(error.code as LoomErrorCode, message, { details: { status } });
    }
    return new LoomError('LOOM_ERR_NETWORK', `${what} answered HTTP ${status}: ${message}`, {
      details: { status, remoteCode: error.code.slice(0, 100) },
    });
  }
  return new LoomError('LOOM_ERR_NETWORK', `${what} answered HTTP ${status}: ${text.slice(0, 200)}`, {
    details: { status },
  });
}

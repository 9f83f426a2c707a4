// Turns any thrown error into an OIP v2 error body; internals stay in the log, not the response.
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isLoomError, type LoomErrorCode } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';

/** OIP v2 error body, plus Loom's stable code. */
export interface ErrorBody {
  error: string;
  code: string;
}

/**
 * Statuses that differ on this API from the coordinator's: to a client of a revoked agent the
 * service is unavailable; the client itself is not forbidden anything.
 */
const INFERENCE_STATUS: Partial<Record<LoomErrorCode, number>> = { LOOM_ERR_CERT_REVOKED: 503 };

/**
 * A response for `err`: LoomErrors keep their message and status (401s also name the Bearer
 * scheme in `WWW-Authenticate`), anything else is a bare 500.
 */
export function errorResponse(c: Context, err: unknown, log: Logger): Response {
  if (isLoomError(err)) {
    const body: ErrorBody & { successor?: number } = {
      error: err.message,
      code: err.code,
      ...(typeof err.details?.successor === 'number' ? { successor: err.details.successor } : {}),
    };
    const status = INFERENCE_STATUS[err.code] ?? err.httpStatus;
    if (status === 401) c.header('WWW-Authenticate', 'Bearer realm="loom-edge"');
    return c.json(body, status as ContentfulStatusCode);
  }
  log.error('inference request failed', {
    method: c.req.method,
    path: c.req.path,
    error: (err as Error)?.stack ?? String(err),
  });
  const body: ErrorBody = { error: 'internal error', code: 'LOOM_ERR_INTERNAL' };
  return c.json(body, 500);
}

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

/** An error answer: status, body, and the headers it needs. */
export interface ErrorAnswer {
  status: number;
  body: ErrorBody & { successor?: number };
  headers: Record<string, string>;
}

/**
 * Statuses that differ on this API from the coordinator's: to a client of a revoked agent the
 * service is unavailable; the client itself is not forbidden anything.
 */
const INFERENCE_STATUS: Partial<Record<LoomErrorCode, number>> = { LOOM_ERR_CERT_REVOKED: 503 };

/**
 * The answer for `err`: LoomErrors keep their message and status (401s also name the Bearer
 * scheme in `WWW-Authenticate`), anything else is a bare 500, logged with the request line.
 */
export function errorAnswer(err: unknown, log: Logger, method: string, path: string): ErrorAnswer {
  if (isLoomError(err)) {
    const status = INFERENCE_STATUS[err.code] ?? err.httpStatus;
    return {
      status,
      body: {
        error: err.message,
        code: err.code,
        ...(typeof err.details?.successor === 'number' ? { successor: err.details.successor } : {}),
      },
      headers: status === 401 ? { 'WWW-Authenticate': 'Bearer realm="loom-edge"' } : {},
    };
  }
  log.error('inference request failed', { method, path, error: (err as Error)?.stack ?? String(err) });
  return { status: 500, body: { error: 'internal error', code: 'LOOM_ERR_INTERNAL' }, headers: {} };
}

/** `errorAnswer` as a Hono response on `c`. */
export function errorResponse(c: Context, err: unknown, log: Logger): Response {
  const answer = errorAnswer(err, log, c.req.method, c.req.path);
  for (const [k, v] of Object.entries(answer.headers)) c.header(k, v);
  return c.json(answer.body, answer.status as ContentfulStatusCode);
}

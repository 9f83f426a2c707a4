// Turns any thrown error into an OIP v2 error body; internals stay in the log, not the response.
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isLoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';

/** OIP v2 error body, plus Loom's stable code. */
export interface ErrorBody {
  error: string;
  code: string;
}

/** A response for `err`: LoomErrors keep their message and status, anything else is a bare 500. */
export function errorResponse(c: Context, err: unknown, log: Logger): Response {
  if (isLoomError(err)) {
    const body: ErrorBody = { error: err.message, code: err.code };
    return c.json(body, err.httpStatus as ContentfulStatusCode);
  }
  log.error('inference request failed', {
    method: c.req.method,
    path: c.req.path,
    error: (err as Error)?.stack ?? String(err),
  });
  const body: ErrorBody = { error: 'internal error', code: 'LOOM_ERR_INTERNAL' };
  return c.json(body, 500);
}

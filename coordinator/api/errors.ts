// Turns every failure into one JSON error response `{error: {code, message}}`; unknown errors
// become a logged 500 that reveals nothing of the internals.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isLoomError, LoomError, type LoomErrorCode } from '../../shared/errors/index.ts';
import { readBodyText } from '../../shared/http/index.ts';
import type { Logger } from '../../shared/log/index.ts';

export function errorResponse(c: Context, status: number, code: string, message: string): Response {
  return c.json({ error: { code, message } }, status as ContentfulStatusCode);
}

/** Codes whose messages may name files, database keys or other internals: the client gets a generic one. */
const GENERIC_MESSAGE: Partial<Record<LoomErrorCode, string>> = {
  LOOM_ERR_STORE: 'the coordinator store failed; see the coordinator log',
  LOOM_ERR_INTERNAL: 'internal error; see the coordinator log',
};

function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/**
 * The one translation of a failure into a response. A LoomError keeps its code and status; one
 * that maps to 500 is a server-side fault, so it is logged with its cause, and for the codes in
 * GENERIC_MESSAGE the client gets a message without internals. Anything else is a logged 500.
 */
export function handleApiError(err: unknown, c: Context, log: Logger): Response {
  if (isLoomError(err)) {
    if (err.httpStatus < 500) return errorResponse(c, err.httpStatus, err.code, err.message);
    log.error('API call failed', {
      method: c.req.method,
      path: c.req.path,
      code: err.code,
      error: err.message,
      ...(err.cause === undefined ? {} : { cause: errorText(err.cause) }),
    });
    return errorResponse(c, err.httpStatus, err.code, GENERIC_MESSAGE[err.code] ?? err.message);
  }
  if (err instanceof HTTPException) {
    const code = err.status === 413 ? 'LOOM_ERR_FRAME_TOO_LARGE' : 'LOOM_ERR_INVALID_ARGUMENT';
    return errorResponse(c, err.status, code, err.message || 'bad request');
  }
  log.error('unhandled API error', { method: c.req.method, path: c.req.path, error: errorText(err) });
  return errorResponse(c, 500, 'LOOM_ERR_INTERNAL', 'internal error; see the coordinator log');
}

/**
 * Reads a JSON object body under the route's body limit; LOOM_ERR_FRAME_TOO_LARGE past it and
 * LOOM_ERR_INVALID_ARGUMENT for anything but a JSON object.
 */
export async function readJsonBody(c: Context): Promise<Record<string, unknown>> {
  const text = await readBodyText(c);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'request body must be valid JSON', { cause: err });
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'request body must be a JSON object', {
      details: { field: 'body' },
    });
  }
  return body as Record<string, unknown>;
}

// A small HTTPS JSON client that pins the Loom CA (or, only to fetch the CA for pinning, skips
// verification). Node's fetch cannot take a per-request CA, hence node:https.

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ERROR_CODES, LoomError, type LoomErrorCode } from '../errors/index.ts';

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** PEM of the CA that must have signed the server certificate. */
  ca?: string;
  /** Client certificate and key for mutual TLS. */
  cert?: string;
  key?: string;
  /** Skips server verification. Only for fetching a CA that is then checked against a pinned fingerprint. */
  insecure?: boolean;
  /** Default 30 000 ms. */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTP(S) request; resolves with any status, rejects (LOOM_ERR_NETWORK) only when no answer came. */
export function httpRequestRaw(url: string, opts: RequestOptions = {}): Promise<HttpResponse> {
  const target = new URL(url);
  const payload =
    opts.body === undefined
      ? undefined
      : Buffer.isBuffer(opts.body)
        ? opts.body
        : Buffer.from(JSON.stringify(opts.body));
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (payload && !Buffer.isBuffer(opts.body)) headers['content-type'] ??= 'application/json';
  if (payload) headers['content-length'] = String(payload.length);
  const isHttps = target.protocol === 'https:';
  const requestFn = isHttps ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = requestFn(
      target,
      {
        method: opts.method ?? (payload ? 'POST' : 'GET'),
        headers,
        timeout: opts.timeoutMs ?? 30_000,
        ...(isHttps
          ? {
              ca: opts.ca,
              cert: opts.cert,
              key: opts.key,
              rejectUnauthorized: !opts.insecure,
            }
          : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', (err) =>
          reject(new LoomError('LOOM_ERR_NETWORK', `${url}: ${err.message}`, { cause: err })),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', (err) =>
      reject(new LoomError('LOOM_ERR_NETWORK', `${url}: ${err.message}`, { cause: err })),
    );
    req.end(payload);
  });
}

/**
 * A JSON request that resolves with the parsed body on 2xx and throws on anything else: a Loom
 * error body `{error: {code, message}}` becomes a LoomError with that code when it is one of
 * ERROR_CODES, and LOOM_ERR_NETWORK with the remote code in `details.remoteCode` otherwise.
 */
export async function requestJson<T>(url: string, opts: RequestOptions = {}): Promise<T> {
  const res = await httpRequestRaw(url, opts);
  const text = res.body.toString('utf8');
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (res.status >= 200 && res.status < 300) return parsed as T;
  const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (error && typeof error === 'object' && typeof error.code === 'string') {
    const message = typeof error.message === 'string' ? error.message : `HTTP ${res.status}`;
    // Only codes this build knows become the LoomError's code: callers branch on it, so a peer
    // (another version, or something else entirely) must not be able to invent one.
    if (Object.hasOwn(ERROR_CODES, error.code)) {
      throw new LoomError(error.code as LoomErrorCode, message, { details: { status: res.status } });
    }
    throw new LoomError('LOOM_ERR_NETWORK', `${url} answered HTTP ${res.status}: ${message}`, {
      details: { status: res.status, remoteCode: error.code.slice(0, 100) },
    });
  }
  throw new LoomError('LOOM_ERR_NETWORK', `${url} answered HTTP ${res.status}: ${text.slice(0, 200)}`, {
    details: { status: res.status },
  });
}

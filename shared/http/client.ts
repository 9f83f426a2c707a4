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

/** OpenSSL and Node codes of a server certificate that does not chain to the CA given. */
const UNTRUSTED_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/** `DNS:a, IP Address:10.0.0.5` (Node's form of a subjectAltName) → `['a', '10.0.0.5']`. */
function certificateNames(subjectAltName: unknown): string[] {
  if (typeof subjectAltName !== 'string') return [];
  return subjectAltName
    .split(',')
    .map((part) => part.trim().replace(/^(DNS|IP Address):/, ''))
    .filter(Boolean);
}

/**
 * A connection failure as one line a person can act on, instead of OpenSSL's text. `details.tls`
 * tells callers which TLS failure it was (`client-certificate-required`, `name-mismatch`,
 * `untrusted-certificate`, `expired-certificate`), so they can add advice of their own.
 */
function connectionError(
  url: URL,
  err: Error & { code?: string; cert?: { subjectaltname?: unknown } },
): LoomError {
  const origin = url.origin;
  const address = `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
  const code = err.code ?? '';
  const make = (message: string, details: Record<string, unknown> = {}): LoomError =>
    new LoomError('LOOM_ERR_NETWORK', message, { cause: err, details: { ...details, systemCode: code } });
  if (
    code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' ||
    /alert certificate required/i.test(err.message)
  ) {
    return make(`${origin} asks for a client certificate (mutual TLS), which this request does not present`, {
      tls: 'client-certificate-required',
    });
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = certificateNames(err.cert?.subjectaltname);
    return make(
      `the server certificate of ${origin} is not valid for "${url.hostname}"` +
        (names.length > 0 ? `; it names ${names.join(', ')}: use one of those in the URL` : ''),
      { tls: 'name-mismatch', certificateNames: names },
    );
  }
  if (UNTRUSTED_CERT_CODES.has(code)) {
    return make(`the server certificate of ${origin} is not signed by the expected CA (${code})`, {
      tls: 'untrusted-certificate',
    });
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return make(`the server certificate of ${origin} is not valid now (${code})`, {
      tls: 'expired-certificate',
    });
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(err.message)) {
    return make(`${address} does not speak TLS (is it a plain HTTP port, or the wrong port?)`);
  }
  if (code === 'ECONNREFUSED') {
    return make(`nothing accepts connections at ${address} (is the server running, and is this its port?)`);
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return make(`cannot resolve the host name "${url.hostname}" (${code})`);
  }
  return make(`${url.href}: ${err.message}`);
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
        // One connection per request: a kept-alive socket that the server closes after its idle
        // timeout, just as the next request reuses it, fails that request with "socket hang up".
        agent: false,
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
    req.on('error', (err) => reject(connectionError(target, err)));
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

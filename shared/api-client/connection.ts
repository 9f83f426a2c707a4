// Where the operator API is and why to trust it: the URL, the bearer token, and the Loom CA pinned
// by its SHA-256 fingerprint (or read from a file), from explicit options or LOOM_* variables.
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { LoomError } from '../errors/index.ts';
import { requestJson } from '../http/index.ts';
import type { CaInfo } from './types.ts';

/** The environment variables a connection falls back to, one per option. */
export const CONNECTION_ENV = {
  url: 'LOOM_URL',
  token: 'LOOM_TOKEN',
  caFingerprint: 'LOOM_CA_FINGERPRINT',
  caFile: 'LOOM_CA_FILE',
} as const;

/** How to reach the operator API. Each option falls back to its `CONNECTION_ENV` variable. */
export interface ConnectionOptions {
  /** `https://host:port` of the operator API. */
  url?: string;
  /** `loom_<id>_<secret>` bearer token. */
  token?: string;
  /** SHA-256 of the Loom CA certificate (64 hex digits; colons and a `sha256:` prefix allowed). */
  caFingerprint?: string;
  /** Path of the Loom CA certificate (the coordinator's `pki/ca-cert.pem`). */
  caFile?: string;
  /** The Loom CA certificate itself, for callers that hold it already. */
  caPem?: string;
  /** Per-request timeout of ordinary calls. Default 30000 ms. */
  timeoutMs?: number;
}

/** A connection with every option settled; `caPem` is fetched and pinned on first use when absent. */
export interface ResolvedConnection {
  url: string;
  token?: string;
  caFingerprint?: string;
  caFile?: string;
  caPem?: string;
  timeoutMs: number;
}

/** Defaults of `ConnectionOptions`. */
export const CONNECTION_DEFAULTS = { timeoutMs: 30_000 } as const;

function invalid(message: string): never {
  throw new LoomError('LOOM_ERR_INVALID_CONFIG', message);
}

/** 64 lowercase hex digits, or LOOM_ERR_INVALID_CONFIG naming where the value came from. */
export function normalizeCaFingerprint(raw: string, source: string): string {
  const hex = raw
    .trim()
    .replace(/^sha256:/i, '')
    .replaceAll(':', '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) invalid(`${source} must be the CA's SHA-256 fingerprint: 64 hex digits`);
  return hex;
}

/** SHA-256 of the certificate's DER form, as `loom coordinator init` prints it. */
export function caFingerprintOf(certPem: string): string {
  let der: Buffer;
  try {
    der = new X509Certificate(certPem).raw;
  } catch (err) {
    throw new LoomError('LOOM_ERR_PKI', 'the CA certificate is not a valid PEM certificate', { cause: err });
  }
  return createHash('sha256').update(der).digest('hex');
}

/**
 * Settles the options against the environment (an option wins over its variable). Needs a URL and
 * a CA to trust; LOOM_ERR_INVALID_CONFIG, naming the flag and variable, when either is missing.
 */
export function resolveConnection(
  options: ConnectionOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedConnection {
  const pick = (key: keyof typeof CONNECTION_ENV): string | undefined => {
    const value = options[key] ?? env[CONNECTION_ENV[key]];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const rawUrl = pick('url');
  if (!rawUrl) invalid(`no coordinator URL: give --url https://HOST:PORT or set ${CONNECTION_ENV.url}`);
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    invalid(`"${rawUrl}" is not a URL (expected https://HOST:PORT)`);
  }
  if (url.protocol !== 'https:')
    invalid(`the operator API is served over HTTPS; "${rawUrl}" is not https://`);
  const fingerprintRaw = pick('caFingerprint');
  const caFingerprint =
    fingerprintRaw === undefined
      ? undefined
      : normalizeCaFingerprint(
          fingerprintRaw,
          options.caFingerprint ? '--ca-fingerprint' : CONNECTION_ENV.caFingerprint,
        );
  const caFile = pick('caFile');
  if (!options.caPem && !caFingerprint && !caFile) {
    invalid(
      `no CA to trust: give --ca-fingerprint (printed by "loom coordinator init") or set ${CONNECTION_ENV.caFingerprint}, ` +
        `or give --ca-file (the coordinator's pki/ca-cert.pem) or set ${CONNECTION_ENV.caFile}`,
    );
  }
  const token = pick('token');
  return {
    url: url.origin,
    ...(token ? { token } : {}),
    ...(caFingerprint ? { caFingerprint } : {}),
    ...(caFile ? { caFile } : {}),
    ...(options.caPem ? { caPem: options.caPem } : {}),
    timeoutMs: options.timeoutMs ?? CONNECTION_DEFAULTS.timeoutMs,
  };
}

/**
 * The CA certificate to trust for `conn`: the one given, else the CA file, else the coordinator's
 * `GET /v1/ca`, fetched without verification only to be compared with the pinned fingerprint (as
 * `loom agent enroll` pins the CA of its token). LOOM_ERR_CA_MISMATCH when the fingerprint differs.
 */
export async function pinnedCa(conn: ResolvedConnection): Promise<string> {
  let pem = conn.caPem;
  if (pem === undefined && conn.caFile !== undefined) {
    pem = await readFile(conn.caFile, 'utf8').catch((err: unknown) => {
      throw new LoomError('LOOM_ERR_INVALID_CONFIG', `cannot read the CA file ${conn.caFile}`, {
        cause: err,
      });
    });
  }
  if (pem === undefined) {
    const info = await requestJson<CaInfo>(`${conn.url}/v1/ca`, {
      insecure: true,
      timeoutMs: conn.timeoutMs,
    });
    pem = typeof info?.caCertificate === 'string' ? info.caCertificate : '';
  }
  if (conn.caFingerprint !== undefined) {
    const actual = caFingerprintOf(pem);
    if (actual !== conn.caFingerprint) {
      throw new LoomError(
        'LOOM_ERR_CA_MISMATCH',
        `the CA of ${conn.url} has fingerprint sha256:${actual.slice(0, 16)}…, not the pinned sha256:${conn.caFingerprint.slice(0, 16)}…`,
        { details: { expected: conn.caFingerprint, actual } },
      );
    }
  }
  return pem;
}

// One-time enrollment tokens that also pin the CA fingerprint, like kubeadm's --discovery-token-ca-cert-hash.
import { randomBytes } from 'node:crypto';
import { LoomError } from '../shared/errors/index.ts';
import { normalizeFingerprint } from './fingerprint.ts';
import { hashSecret } from './secret-hash.ts';
import { assertPositive } from './validity.ts';

const PREFIX = 'loom1';
const ID_RE = /^[0-9a-f]{16}$/;
// 32 bytes in unpadded base64url are 43 characters; '.' never occurs, so splitting on it is unambiguous.
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;
const FINGERPRINT_RE = /^[0-9a-f]{64}$/;

export interface CreateEnrollmentTokenOptions {
  /** SHA-256 fingerprint of the CA certificate, in any notation normalizeFingerprint accepts. */
  caFingerprint: string;
  /** Lifetime in seconds. Default 3600. */
  ttlSeconds?: number;
  /** Issue time. Default now. */
  now?: Date;
}

export interface EnrollmentToken {
  /** `loom1.<id>.<secret>.<caFingerprint>`: give this to the agent; never store it. */
  token: string;
  /** 16 hex digits; the lookup key for the stored record. */
  id: string;
  /** SHA-256 hex of the secret; store this, not the secret. */
  secretHash: string;
  expiresAt: Date;
}

export interface ParsedEnrollmentToken {
  id: string;
  secret: string;
  /** 64 lowercase hex digits. */
  caFingerprint: string;
}

/**
 * Creates an enrollment token. Single use and expiry are enforced by whoever stores `id`/`secretHash`.
 * @param opts.ttlSeconds default 3600
 * @param opts.now default new Date()
 */
export function createEnrollmentToken(opts: CreateEnrollmentTokenOptions): EnrollmentToken {
  if (!opts || typeof opts !== 'object') throw new TypeError('opts must be an object');
  let caFingerprint: string;
  try {
    caFingerprint = normalizeFingerprint(opts.caFingerprint);
  } catch {
    // The caller computed this from its own CA, so a bad value is a bug, not bad input.
    throw new TypeError('caFingerprint must be a SHA-256 fingerprint (see certificateFingerprint)');
  }
  const ttlSeconds = opts.ttlSeconds ?? 3600;
  assertPositive(ttlSeconds, 'ttlSeconds');
  const now = opts.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new TypeError('now must be a valid Date');

  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return {
    token: `${PREFIX}.${id}.${secret}.${caFingerprint}`,
    id,
    secretHash: hashSecret(secret),
    expiresAt: new Date(now.getTime() + ttlSeconds * 1000),
  };
}

/**
 * Splits and validates an enrollment token. Surrounding whitespace (from copy-paste) is ignored; anything
 * else off-format throws LOOM_ERR_TOKEN_INVALID. Messages never echo the token, since it holds a secret.
 */
export function parseEnrollmentToken(token: string): ParsedEnrollmentToken {
  if (typeof token !== 'string') throw invalid('it is not a string');
  const parts = token.trim().split('.');
  if (parts.length !== 4) throw invalid(`expected 4 dot-separated parts, got ${parts.length}`);
  const [prefix, id, secret, caFingerprint] = parts;
  if (prefix !== PREFIX) throw invalid(`it must start with "${PREFIX}."`);
  if (!ID_RE.test(id)) throw invalid('the id must be 16 lowercase hex digits');
  // Re-encoding catches non-canonical final characters that would decode to the same bytes.
  if (!SECRET_RE.test(secret) || Buffer.from(secret, 'base64url').toString('base64url') !== secret) {
    throw invalid('the secret must be 43 base64url characters');
  }
  if (!FINGERPRINT_RE.test(caFingerprint))
    throw invalid('the CA fingerprint must be 64 lowercase hex digits');
  return { id, secret, caFingerprint };
}

function invalid(reason: string): LoomError {
  return new LoomError(
    'LOOM_ERR_TOKEN_INVALID',
    `Malformed enrollment token: ${reason} (format loom1.<id>.<secret>.<ca-sha256>)`,
  );
}

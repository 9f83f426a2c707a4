// Bearer tokens for the operator API: an id for lookup plus a secret stored only as a hash.
import { randomBytes } from 'node:crypto';
import { LoomError } from '../shared/errors/index.ts';
import { hashSecret } from './secret-hash.ts';

// Both parts are hex, so '_' can only be a separator.
const API_TOKEN_RE = /^loom_([0-9a-f]{12})_([0-9a-f]{64})$/;

export interface ApiToken {
  /** `loom_<id>_<secret>`: shown to the operator once; never store it. */
  token: string;
  /** 12 hex digits; lets the server find the record without scanning. */
  id: string;
  /** SHA-256 hex of the secret; store this. */
  hash: string;
}

/** Creates an API bearer token: 6 random bytes of id and 32 of secret, both hex. */
export function createApiToken(): ApiToken {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('hex');
  return { token: `loom_${id}_${secret}`, id, hash: hashSecret(secret) };
}

/** Splits a bearer token; throws LOOM_ERR_UNAUTHORIZED (without echoing it) when it is off-format. */
export function parseApiToken(token: string): { id: string; secret: string } {
  const match = typeof token === 'string' ? API_TOKEN_RE.exec(token.trim()) : null;
  if (!match)
    throw new LoomError('LOOM_ERR_UNAUTHORIZED', 'Malformed API token (expected loom_<id>_<secret>)');
  return { id: match[1], secret: match[2] };
}

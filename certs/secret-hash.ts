// Hashing of token secrets for storage, and constant-time comparison against a stored hash.
import { createHash, timingSafeEqual } from 'node:crypto';

/** SHA-256 of the secret's UTF-8 bytes, lowercase hex. Secrets are 256-bit random, so no salt or KDF is needed. */
export function hashSecret(secret: string): string {
  if (typeof secret !== 'string') throw new TypeError('secret must be a string');
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** True when `secret` hashes to `hash` (64 hex digits, any case); compares in constant time. */
export function secretMatches(secret: string, hash: string): boolean {
  if (typeof secret !== 'string' || typeof hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hash)) return false;
  return timingSafeEqual(Buffer.from(hashSecret(secret), 'hex'), Buffer.from(hash, 'hex'));
}

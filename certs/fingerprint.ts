// SHA-256 certificate fingerprints: computing, normalising, short display form, and CA pinning.
import { createHash } from 'node:crypto';
import { LoomError } from '../shared/errors/index.ts';
import { nodeCertificate } from './keys.ts';

/**
 * SHA-256 of the certificate's DER encoding as 64 lowercase hex digits, no colons (the same digest as
 * `openssl x509 -fingerprint -sha256`). Throws LOOM_ERR_PKI on a malformed PEM.
 */
export function certificateFingerprint(certPem: string): string {
  return createHash('sha256').update(nodeCertificate(certPem).raw).digest('hex');
}

/**
 * Canonical form of a user-supplied fingerprint: accepts an optional `sha256:` prefix, colons and any
 * case, returns 64 lowercase hex digits. Throws LOOM_ERR_TOKEN_INVALID otherwise, since fingerprints
 * reach us inside enrollment tokens and CLI flags.
 */
export function normalizeFingerprint(s: string): string {
  if (typeof s !== 'string') throw new TypeError('fingerprint must be a string');
  const hex = s
    .trim()
    .replace(/^sha256:/i, '')
    .replaceAll(':', '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new LoomError('LOOM_ERR_TOKEN_INVALID', 'CA fingerprint must be 64 hex digits (SHA-256)');
  }
  return hex;
}

/** First 16 hex digits, enough to tell fingerprints apart in a message. */
export function shortFingerprint(fingerprint: string): string {
  return `sha256:${fingerprint.slice(0, 16)}…`;
}

/**
 * Throws LOOM_ERR_CA_MISMATCH, naming both fingerprints in short form, unless `actualCertPem` has the
 * pinned fingerprint `expected` (any accepted notation). Throws LOOM_ERR_PKI if the certificate is malformed.
 */
export function assertCaFingerprint(expected: string, actualCertPem: string): void {
  const want = normalizeFingerprint(expected);
  const got = certificateFingerprint(actualCertPem);
  if (want !== got) {
    throw new LoomError(
      'LOOM_ERR_CA_MISMATCH',
      `Coordinator CA fingerprint ${shortFingerprint(got)} does not match the pinned ${shortFingerprint(want)}`,
      { details: { expected: want, actual: got } },
    );
  }
}

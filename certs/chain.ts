// Verifies that a certificate was issued by the Loom CA and is valid at a given time.
import { LoomError } from '../shared/errors/index.ts';
import { nodeCertificate } from './keys.ts';

/**
 * Throws LOOM_ERR_PKI unless `certPem` was signed by `caCertPem` (issuer name/key id match and signature
 * verifies) and both certificates are valid at `at`. Revocation is checked separately (RevocationList).
 * @param at default now
 */
export function verifyCertificateChain(caCertPem: string, certPem: string, at: Date = new Date()): void {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new TypeError('at must be a valid Date');
  const ca = nodeCertificate(caCertPem);
  const cert = nodeCertificate(certPem);
  if (!ca.ca) throw new LoomError('LOOM_ERR_PKI', 'The trust anchor is not a CA certificate');
  // checkIssued alone only compares names, which anyone can copy; the signature check is what binds them.
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    throw new LoomError('LOOM_ERR_PKI', `Certificate "${cert.subject}" was not issued by CA "${ca.subject}"`);
  }
  for (const [what, c] of [
    ['Certificate', cert],
    ['CA certificate', ca],
  ] as const) {
    const notBefore = new Date(c.validFrom);
    const notAfter = new Date(c.validTo);
    if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
      throw new LoomError('LOOM_ERR_PKI', `${what} has an unreadable validity period`);
    }
    if (at < notBefore || at > notAfter) {
      throw new LoomError(
        'LOOM_ERR_PKI',
        `${what} is not valid at ${at.toISOString()} (valid ${notBefore.toISOString()} to ${notAfter.toISOString()})`,
      );
    }
  }
}

// Reads the fields of a certificate that Loom acts on (names, serial, validity, fingerprint).
import { commonNameOf } from './dn.ts';
import { certificateFingerprint } from './fingerprint.ts';
import { forgeCertificate } from './keys.ts';

export interface CertificateInfo {
  /** Subject CN ('' if absent); for agent certificates, the agent id. */
  subjectCN: string;
  issuerCN: string;
  /** Lowercase hex, as the DER INTEGER bytes. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 of the DER, 64 lowercase hex digits. */
  fingerprint: string;
}

/** Parses a PEM certificate (RSA keys only). Throws LOOM_ERR_PKI on a malformed PEM. */
export function certificateInfo(certPem: string): CertificateInfo {
  const cert = forgeCertificate(certPem);
  return {
    subjectCN: commonNameOf(cert.subject),
    issuerCN: commonNameOf(cert.issuer),
    serial: cert.serialNumber.toLowerCase(),
    notBefore: cert.validity.notBefore,
    notAfter: cert.validity.notAfter,
    fingerprint: certificateFingerprint(certPem),
  };
}

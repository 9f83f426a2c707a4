// SHA-256 RSA PKCS#1 v1.5 signatures made by OpenSSL for the certificates and CSRs node-forge
// builds: forge's pure-JS private-key operation takes about 55 ms for a 2048-bit key where
// OpenSSL takes 2, and the coordinator signs a certificate on its event loop at every enrollment
// and renewal. The scheme is deterministic, so the bytes are the ones forge would have made.
import { type KeyObject, sign } from 'node:crypto';
import forge from 'node-forge';

// Both are public forge functions (what cert.sign and csr.sign call) that its typings leave out.
const pki = forge.pki as typeof forge.pki & {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
  getCertificationRequestInfo(csr: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
};

/** `key`'s SHA-256 RSA signature over `der` (a forge binary string), as a forge binary string. */
function rsaSha256(key: KeyObject, der: forge.asn1.Asn1): string {
  const bytes = Buffer.from(forge.asn1.toDer(der).getBytes(), 'binary');
  return sign('sha256', bytes, key).toString('binary');
}

/** Signs `cert` with sha256WithRSAEncryption, as `cert.sign(key, forge.md.sha256.create())` does. */
export function signCertificateNatively(cert: forge.pki.Certificate, key: KeyObject): void {
  cert.signatureOid = forge.pki.oids.sha256WithRSAEncryption;
  cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption;
  cert.tbsCertificate = pki.getTBSCertificate(cert);
  cert.signature = rsaSha256(key, cert.tbsCertificate);
}

/** Signs `csr` with sha256WithRSAEncryption, as `csr.sign(key, forge.md.sha256.create())` does. */
export function signCsrNatively(csr: forge.pki.CertificateSigningRequest, key: KeyObject): void {
  csr.signatureOid = forge.pki.oids.sha256WithRSAEncryption;
  csr.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption;
  const info = pki.getCertificationRequestInfo(csr);
  csr.certificationRequestInfo = info;
  csr.signature = rsaSha256(key, info);
}

// Builds X.509 certificates with node-forge and signs them with OpenSSL; shared by the CA, server
// and client issuers.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { LoomError } from '../shared/errors/index.ts';
import type { KeyCertPair } from './ca.ts';
import { commonNameSubject, rewritableAttributes } from './dn.ts';
import { forgeCertificate, keyMatchesCertificate, nodeCertificate } from './keys.ts';
import { signCertificateNatively } from './native-sign.ts';
import { randomSerialHex } from './serial.ts';

/** A forge extension descriptor (`{ name: 'keyUsage', digitalSignature: true, ... }`). */
export type ForgeExtension = Record<string, unknown>;

/** A CA ready to sign: parsed certificate plus its private key. */
export interface Issuer {
  cert: forge.pki.Certificate;
  key: KeyObject;
}

export interface CertificateTemplate {
  subjectCN: string;
  publicKey: forge.pki.PublicKey;
  notBefore: Date;
  notAfter: Date;
  extensions: ForgeExtension[];
  /** The signing CA, or the subject's own key for a self-signed certificate. */
  signer: Issuer | { selfSignedKey: KeyObject };
}

/**
 * Parses a CA key pair for signing. Throws LOOM_ERR_PKI when the PEMs are malformed, the key does not
 * belong to the certificate, or the certificate is not a CA (a leaf would sign certs no peer accepts).
 */
export function loadIssuer(ca: KeyCertPair): Issuer {
  if (!ca || typeof ca.certPem !== 'string' || typeof ca.keyPem !== 'string') {
    throw new TypeError('ca must be a { certPem, keyPem } pair of strings');
  }
  if (!nodeCertificate(ca.certPem).ca) {
    throw new LoomError('LOOM_ERR_PKI', 'CA certificate does not have basicConstraints cA=true');
  }
  if (!keyMatchesCertificate(ca.keyPem, ca.certPem)) {
    throw new LoomError('LOOM_ERR_PKI', 'CA private key does not match the CA certificate');
  }
  return { cert: forgeCertificate(ca.certPem), key: createPrivateKey(ca.keyPem) };
}

/** Creates, signs (SHA-256) and PEM-encodes a certificate with a fresh random serial. */
export function signCertificate(t: CertificateTemplate): { certPem: string; serial: string } {
  const cert = forge.pki.createCertificate();
  cert.version = 2; // v3, required for extensions
  cert.serialNumber = randomSerialHex();
  cert.publicKey = t.publicKey;
  cert.validity.notBefore = t.notBefore;
  cert.validity.notAfter = t.notAfter;
  cert.setSubject(commonNameSubject(t.subjectCN));

  const issuer = 'cert' in t.signer ? t.signer : undefined;
  cert.setIssuer(
    issuer ? rewritableAttributes(issuer.cert.subject.attributes) : commonNameSubject(t.subjectCN),
  );
  // Authority key id lets OpenSSL pick the right CA when several share a subject name (e.g. after rotation).
  const authorityKeyId = issuer
    ? subjectKeyIdOf(issuer.cert)
    : cert.generateSubjectKeyIdentifier().getBytes();
  cert.setExtensions([
    ...t.extensions,
    { name: 'subjectKeyIdentifier' },
    ...(authorityKeyId ? [{ name: 'authorityKeyIdentifier', keyIdentifier: authorityKeyId }] : []),
  ]);

  signCertificateNatively(cert, 'cert' in t.signer ? t.signer.key : t.signer.selfSignedKey);
  return { certPem: forge.pki.certificateToPem(cert), serial: cert.serialNumber };
}

/** The CA's own subjectKeyIdentifier as raw bytes, so issued certs point at exactly that key id. */
function subjectKeyIdOf(cert: forge.pki.Certificate): string | undefined {
  const ext = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  return ext?.subjectKeyIdentifier ? forge.util.hexToBytes(ext.subjectKeyIdentifier) : undefined;
}

// Certificate signing requests: the agent makes its key and CSR locally; the coordinator signs it.
import { createPrivateKey } from 'node:crypto';
import forge from 'node-forge';
import { LoomError } from '../shared/errors/index.ts';
import type { KeyCertPair } from './ca.ts';
import { assertCommonName, commonNameSubject } from './dn.ts';
import { generateRsaKeyPair, RSA_MODULUS_BITS } from './keys.ts';
import { signCsrNatively } from './native-sign.ts';
import { loadIssuer, signCertificate } from './sign.ts';
import { assertPositive, validityWindow } from './validity.ts';

/** Largest RSA modulus a CSR may carry; bigger keys only make verification slow. */
const MAX_CSR_MODULUS_BITS = 4096;
/** The one RSA public exponent accepted (F4, what every mainstream key generator uses). */
const CSR_PUBLIC_EXPONENT = 65537;

export interface CreateKeyAndCsrOptions {
  /** CN to request; the coordinator replaces it with the agent id it assigns. */
  commonName: string;
}

/**
 * Generates a key pair and a SHA-256 signed CSR for it. The private key never leaves the caller.
 */
export function createKeyAndCsr(opts: CreateKeyAndCsrOptions): { keyPem: string; csrPem: string } {
  assertCommonName(opts?.commonName, 'commonName');
  const { keyPem, publicKeyPem } = generateRsaKeyPair();
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  csr.setSubject(commonNameSubject(opts.commonName));
  signCsrNatively(csr, createPrivateKey(keyPem));
  return { keyPem, csrPem: forge.pki.certificationRequestToPem(csr) };
}

export interface SignCsrOptions {
  /** CN of the issued certificate: the agent id the coordinator assigned, whatever the CSR asked for. */
  subjectCN: string;
  /** Lifetime in seconds from notBefore. Default 30 days. */
  validitySeconds?: number;
  /** Start of validity. Default now minus 60 s, so agents with slightly slow clocks accept it. */
  notBefore?: Date;
}

export interface SignedCsr {
  certPem: string;
  /** Lowercase hex serial. */
  serial: string;
  notAfter: Date;
}

/**
 * Signs an agent's CSR as a client certificate (extKeyUsage clientAuth, keyUsage
 * digitalSignature/keyEncipherment). Only the CSR's public key is used; its subject and any requested
 * extensions are ignored. Throws LOOM_ERR_CSR_INVALID when the CSR is malformed, its key is not RSA with a
 * 2048- to 4096-bit modulus and public exponent 65537 (checked before the signature, so an oversized
 * key costs nothing), or its self-signature does not verify.
 * @param opts.validitySeconds default 2592000 (30 days)
 * @param opts.notBefore default now minus 60 s
 */
export function signCsr(ca: KeyCertPair, csrPem: string, opts: SignCsrOptions): SignedCsr {
  if (!opts || typeof opts !== 'object') throw new TypeError('opts must be an object');
  assertCommonName(opts.subjectCN, 'subjectCN');
  const validitySeconds = opts.validitySeconds ?? 30 * 86_400;
  assertPositive(validitySeconds, 'validitySeconds');
  const { notBefore, notAfter } = validityWindow(validitySeconds, opts.notBefore);

  const publicKey = verifiedCsrPublicKey(csrPem);
  const { certPem, serial } = signCertificate({
    subjectCN: opts.subjectCN,
    publicKey,
    notBefore,
    notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
    ],
    signer: loadIssuer(ca),
  });
  return { certPem, serial, notAfter };
}

/** The CSR's RSA public key after checking the CSR proves possession of the matching private key. */
function verifiedCsrPublicKey(csrPem: string): forge.pki.rsa.PublicKey {
  if (typeof csrPem !== 'string' || !csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw new LoomError('LOOM_ERR_CSR_INVALID', 'CSR is not a PEM "CERTIFICATE REQUEST"');
  }
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem, true);
  } catch (err) {
    // forge throws for undecodable DER, non-RSA keys and unknown signature algorithms alike.
    throw new LoomError('LOOM_ERR_CSR_INVALID', 'CSR could not be parsed (expected an RSA PKCS#10 request)', {
      cause: err,
    });
  }
  const key = csr.publicKey as forge.pki.rsa.PublicKey | null;
  if (!key || typeof key.n?.bitLength !== 'function' || typeof key.e?.bitLength !== 'function') {
    throw new LoomError('LOOM_ERR_CSR_INVALID', 'CSR has no RSA public key');
  }
  // The key is checked before the signature: verifying costs time that grows with the modulus and
  // the exponent, and this runs for unauthenticated callers.
  const bits = key.n.bitLength();
  if (bits < RSA_MODULUS_BITS || bits > MAX_CSR_MODULUS_BITS) {
    throw new LoomError(
      'LOOM_ERR_CSR_INVALID',
      `CSR key is ${bits}-bit RSA; ${RSA_MODULUS_BITS} to ${MAX_CSR_MODULUS_BITS} bits are accepted`,
    );
  }
  if (key.e.toString(10) !== String(CSR_PUBLIC_EXPONENT)) {
    throw new LoomError(
      'LOOM_ERR_CSR_INVALID',
      `CSR key has an RSA public exponent other than ${CSR_PUBLIC_EXPONENT}, the only one accepted`,
    );
  }
  let verified: boolean;
  try {
    verified = csr.verify();
  } catch (err) {
    // forge throws instead of answering false when the signature decrypts to a malformed block.
    throw new LoomError('LOOM_ERR_CSR_INVALID', 'CSR signature does not verify', { cause: err });
  }
  if (!verified) throw new LoomError('LOOM_ERR_CSR_INVALID', 'CSR signature does not verify');
  return key;
}

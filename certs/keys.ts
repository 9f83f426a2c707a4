// RSA key generation with Node's native crypto, and PEM-to-forge conversion that fails with Loom errors.
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { LoomError } from '../shared/errors/index.ts';

/** A freshly generated RSA key pair, both halves PEM encoded. */
export interface RsaKeyPair {
  /** PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`). */
  keyPem: string;
  /** SPKI public key (`-----BEGIN PUBLIC KEY-----`). */
  publicKeyPem: string;
}

/** Key size for every key Loom creates; 2048 is the floor browsers and OpenSSL still accept. */
export const RSA_MODULUS_BITS = 2048;

/**
 * Generates an RSA key pair with Node's native crypto (forge's pure-JS keygen takes seconds).
 * @returns PKCS#8 private key and SPKI public key, 2048-bit modulus.
 */
export function generateRsaKeyPair(): RsaKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: RSA_MODULUS_BITS,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { keyPem: privateKey, publicKeyPem: publicKey };
}

/** Parses a single certificate PEM into a forge certificate; throws LOOM_ERR_PKI on bad input. */
export function forgeCertificate(pem: string): forge.pki.Certificate {
  if (typeof pem !== 'string') throw new TypeError('certificate PEM must be a string');
  try {
    return forge.pki.certificateFromPem(pem);
  } catch (err) {
    throw new LoomError('LOOM_ERR_PKI', 'Certificate is not a valid RSA X.509 PEM certificate', {
      cause: err,
    });
  }
}

/** Parses a certificate PEM with Node's OpenSSL binding; throws LOOM_ERR_PKI on bad input. */
export function nodeCertificate(pem: string): X509Certificate {
  if (typeof pem !== 'string') throw new TypeError('certificate PEM must be a string');
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new LoomError('LOOM_ERR_PKI', 'Certificate is not a valid X.509 PEM certificate', { cause: err });
  }
}

/** True when the private key PEM belongs to the certificate's public key. */
export function keyMatchesCertificate(keyPem: string, certPem: string): boolean {
  try {
    return nodeCertificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

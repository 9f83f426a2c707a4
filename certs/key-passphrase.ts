// A private key at rest under a passphrase (encrypted PKCS#8 as OpenSSL writes it, AES-256-CBC),
// and back to the plain PEM the signing code needs, in memory only.
import { createPrivateKey } from 'node:crypto';
import { LoomError } from '../shared/errors/index.ts';

/** True when `pem` is an encrypted private key. */
export function isEncryptedKeyPem(pem: string): boolean {
  return pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
}

/** `keyPem` encrypted under `passphrase` (at least 8 characters). */
export function encryptKeyPem(keyPem: string, passphrase: string): string {
  if (passphrase.length < 8) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'the CA passphrase must be at least 8 characters');
  }
  return createPrivateKey(keyPem)
    .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase })
    .toString();
}

/** The plain PEM of an encrypted key; LOOM_ERR_PKI when the passphrase does not open it. */
export function decryptKeyPem(keyPem: string, passphrase: string): string {
  try {
    return createPrivateKey({ key: keyPem, format: 'pem', passphrase })
      .export({ type: 'pkcs8', format: 'pem' })
      .toString();
  } catch (err) {
    throw new LoomError('LOOM_ERR_PKI', 'the CA key does not open with the passphrase given', { cause: err });
  }
}

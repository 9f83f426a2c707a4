// The Loom certificate authority: a self-signed root that signs the coordinator and agent certificates.
import { createPrivateKey } from 'node:crypto';
import forge from 'node-forge';
import { assertCommonName } from './dn.ts';
import { generateRsaKeyPair } from './keys.ts';
import { signCertificate } from './sign.ts';
import { assertPositive, validityWindow } from './validity.ts';

/** A certificate and its private key, both PEM encoded. */
export interface KeyCertPair {
  certPem: string;
  keyPem: string;
}

export interface CreateCaOptions {
  /** Subject and issuer CN. Default 'Loom CA'. */
  commonName?: string;
  /** Lifetime in days. Default 3650. */
  validityDays?: number;
}

/**
 * Creates a self-signed CA (basicConstraints cA=true, keyUsage keyCertSign/cRLSign, SHA-256, random serial).
 * @param opts.commonName default 'Loom CA'
 * @param opts.validityDays default 3650
 */
export function createCA(opts: CreateCaOptions = {}): KeyCertPair {
  const commonName = opts.commonName ?? 'Loom CA';
  const validityDays = opts.validityDays ?? 3650;
  assertCommonName(commonName, 'commonName');
  assertPositive(validityDays, 'validityDays');

  const { keyPem, publicKeyPem } = generateRsaKeyPair();
  const { notBefore, notAfter } = validityWindow(validityDays * 86_400);
  const { certPem } = signCertificate({
    subjectCN: commonName,
    publicKey: forge.pki.publicKeyFromPem(publicKeyPem),
    notBefore,
    notAfter,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
    signer: { selfSignedKey: createPrivateKey(keyPem) },
  });
  return { certPem, keyPem };
}

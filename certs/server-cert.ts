// Issues the coordinator's TLS server certificate from the Loom CA.
import forge from 'node-forge';
import type { KeyCertPair } from './ca.ts';
import { assertCommonName, MAX_COMMON_NAME_LENGTH } from './dn.ts';
import { generateRsaKeyPair } from './keys.ts';
import { subjectAltNameExtension } from './san.ts';
import { loadIssuer, signCertificate } from './sign.ts';
import { assertPositive, validityWindow } from './validity.ts';

export interface IssueServerCertOptions {
  /** Host names and IP literals (v4 or v6) clients will connect to; at least one. */
  hosts: string[];
  /** Subject CN. Default: the first host ('loom-coordinator' if that is over 64 characters). */
  commonName?: string;
  /** Lifetime in days. Default 825 (the longest validity public TLS clients have accepted). */
  validityDays?: number;
}

/**
 * Issues a server certificate signed by `ca`, with a fresh key pair, SAN entries for every host
 * (IP literals as iPAddress, the rest as dNSName) and extKeyUsage serverAuth.
 * @param opts.commonName default opts.hosts[0]
 * @param opts.validityDays default 825
 */
export function issueServerCert(ca: KeyCertPair, opts: IssueServerCertOptions): KeyCertPair {
  if (!opts || typeof opts !== 'object') throw new TypeError('opts must be an object');
  const san = subjectAltNameExtension(opts.hosts);
  // CN is informational (clients match SANs), so a host too long for a CN falls back to a fixed name.
  const firstHost = opts.hosts[0];
  const commonName =
    opts.commonName ?? (firstHost.length <= MAX_COMMON_NAME_LENGTH ? firstHost : 'loom-coordinator');
  const validityDays = opts.validityDays ?? 825;
  assertCommonName(commonName, 'commonName');
  assertPositive(validityDays, 'validityDays');

  const issuer = loadIssuer(ca);
  const { keyPem, publicKeyPem } = generateRsaKeyPair();
  const { notBefore, notAfter } = validityWindow(validityDays * 86_400);
  const { certPem } = signCertificate({
    subjectCN: commonName,
    publicKey: forge.pki.publicKeyFromPem(publicKeyPem),
    notBefore,
    notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      san,
    ],
    signer: issuer,
  });
  return { certPem, keyPem };
}

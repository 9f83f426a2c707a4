// Public door of certs: Loom's PKI (CA, certificates, CSRs, fingerprints, tokens, revocation, key files).

export type { ApiToken } from './api-token.ts';
export { createApiToken, parseApiToken } from './api-token.ts';
export type { CreateCaOptions, KeyCertPair } from './ca.ts';
export { createCA } from './ca.ts';
export type { CertificateInfo } from './cert-info.ts';
export { certificateInfo } from './cert-info.ts';
export { verifyCertificateChain } from './chain.ts';
export type { CreateKeyAndCsrOptions, SignCsrOptions, SignedCsr } from './csr.ts';
export { createKeyAndCsr, signCsr } from './csr.ts';
export type {
  CreateEnrollmentTokenOptions,
  EnrollmentToken,
  ParsedEnrollmentToken,
} from './enrollment-token.ts';
export { createEnrollmentToken, parseEnrollmentToken } from './enrollment-token.ts';
export {
  assertCaFingerprint,
  certificateFingerprint,
  normalizeFingerprint,
  shortFingerprint,
} from './fingerprint.ts';
export { writeKeyFile } from './key-file.ts';
export { decryptKeyPem, encryptKeyPem, isEncryptedKeyPem } from './key-passphrase.ts';
export type { RevocationListJSON } from './revocation.ts';
export { normalizeSerial, RevocationList } from './revocation.ts';
export { hashSecret, secretMatches } from './secret-hash.ts';
export type { IssueServerCertOptions } from './server-cert.ts';
export { issueServerCert } from './server-cert.ts';

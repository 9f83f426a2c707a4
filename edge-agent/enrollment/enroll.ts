// `loom agent enroll`: make a key pair here, pin the coordinator's CA by the fingerprint in the
// token (as kubeadm join pins the CA hash), send a CSR, save the signed certificate.
import { hostname } from 'node:os';
import {
  assertCaFingerprint,
  certificateFingerprint,
  certificateInfo,
  createKeyAndCsr,
  parseEnrollmentToken,
  verifyCertificateChain,
} from '../../certs/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { requestJson } from '../../shared/http/index.ts';
import { type AgentIdentity, saveIdentity } from '../identity/index.ts';

export interface EnrollOptions {
  /** Operator API base URL, e.g. https://coordinator.example:8443 */
  coordinatorUrl: string;
  token: string;
  dataDir: string;
  /** Display name (default: this host's name). */
  name?: string;
}

export interface EnrollResponse {
  agentId: string;
  certificate: string;
  caCertificate: string;
  agentPort: number;
}

/** Enrolls this host as an agent and writes its identity under `dataDir`. */
export async function enrollAgent(opts: EnrollOptions): Promise<AgentIdentity> {
  const parsed = parseEnrollmentToken(opts.token.trim());
  let base: URL;
  try {
    base = new URL(opts.coordinatorUrl);
  } catch {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--coordinator ${opts.coordinatorUrl} is not a URL`);
  }
  if (base.protocol !== 'https:') {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--coordinator must be an https:// URL');
  }
  const root = base.origin;
  // The CA is fetched without verification only to compare it with the pinned fingerprint;
  // nothing secret is sent on this connection.
  const { caCertificate } = await requestJson<{ caCertificate: string }>(`${root}/v1/ca`, { insecure: true });
  assertCaFingerprint(parsed.caFingerprint, caCertificate);

  const name = opts.name ?? hostname();
  const { keyPem, csrPem } = createKeyAndCsr({ commonName: name });
  // From here on the server must present a certificate from the pinned CA.
  const res = await requestJson<EnrollResponse>(`${root}/v1/enroll`, {
    ca: caCertificate,
    body: { token: opts.token.trim(), csr: csrPem, name },
  });
  verifyCertificateChain(caCertificate, res.certificate);
  if (certificateInfo(res.certificate).subjectCN !== res.agentId) {
    throw new LoomError('LOOM_ERR_PKI', 'the issued certificate does not name the assigned agent id');
  }
  const identity: AgentIdentity = {
    agentId: res.agentId,
    name,
    coordinatorUrl: root,
    // URL.hostname keeps the brackets of an IPv6 literal, so it can be reused as it is.
    agentUrl: `wss://${base.hostname}:${res.agentPort}/v1/agent`,
    caFingerprint: certificateFingerprint(caCertificate),
    enrolledAt: new Date().toISOString(),
    keyPem,
    certPem: res.certificate,
    caPem: caCertificate,
  };
  await saveIdentity(opts.dataDir, identity);
  return identity;
}

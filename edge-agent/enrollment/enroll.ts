// `loom agent enroll`: make a key pair here, pin the coordinator's CA by the fingerprint in the
// token (as kubeadm join pins the CA hash), send a CSR, save the signed certificate.
import { access } from 'node:fs/promises';
import { hostname } from 'node:os';
import {
  assertCaFingerprint,
  certificateFingerprint,
  certificateInfo,
  createKeyAndCsr,
  parseEnrollmentToken,
  verifyCertificateChain,
} from '../../certs/index.ts';
import { causeWithCode, isLoomError, LoomError } from '../../shared/errors/index.ts';
import { requestJson } from '../../shared/http/index.ts';
import { type AgentIdentity, identityDir, loadIdentity, saveIdentity } from '../identity/index.ts';
import { openLocalModelStore } from '../store/index.ts';

export interface EnrollOptions {
  /** Operator API base URL, e.g. https://coordinator.example:8443 */
  coordinatorUrl: string;
  token: string;
  dataDir: string;
  /** Display name (default: this host's name). */
  name?: string;
  /** Labels sent with the enrollment (`site`, `region`, `tier`...), stored by the coordinator. Default none. */
  labels?: Record<string, string>;
  /**
   * Replace an identity `dataDir` already holds. Default false: such a data dir is refused with
   * LOOM_ERR_CONFLICT naming the agent it holds, before the token is spent.
   */
  force?: boolean;
  /** With `force`, called with the identity about to be replaced, once the new one is issued. */
  onReplace?: (previous: ExistingIdentity) => void;
}

/** What is known of an identity found in a data dir (nothing, when it cannot be read). */
export interface ExistingIdentity {
  agentId?: string;
  name?: string;
  coordinatorUrl?: string;
  enrolledAt?: string;
  /** Why it could not be read, when it could not. */
  damaged?: string;
}

export interface EnrollResponse {
  agentId: string;
  certificate: string;
  caCertificate: string;
  agentPort: number;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The identity in `dataDir`, if there is one (even a damaged one: it is still in the way). */
async function existingIdentity(dataDir: string): Promise<ExistingIdentity | undefined> {
  const dir = identityDir(dataDir);
  if (!(await exists(dir)) && !(await exists(`${dir}.prev`))) return undefined;
  try {
    const id = await loadIdentity(dataDir);
    return {
      agentId: id.agentId,
      name: id.name,
      coordinatorUrl: id.coordinatorUrl,
      enrolledAt: id.enrolledAt,
    };
  } catch (err) {
    return { damaged: err instanceof Error ? err.message : String(err) };
  }
}

function describeIdentity(id: ExistingIdentity): string {
  if (id.agentId === undefined) return `an agent identity that cannot be read (${id.damaged})`;
  const extra = [
    id.name ? `"${id.name}"` : '',
    id.coordinatorUrl ? `enrolled with ${id.coordinatorUrl}` : '',
    id.enrolledAt ? `on ${id.enrolledAt.slice(0, 10)}` : '',
  ].filter(Boolean);
  return `the identity of agent ${id.agentId}${extra.length ? ` (${extra.join(' ')})` : ''}`;
}

/** Replacing the identity under a running agent would leave it on a key the coordinator dropped. */
async function assertNoAgentRunning(dataDir: string): Promise<void> {
  try {
    await (await openLocalModelStore(dataDir)).close();
  } catch (err) {
    if (!causeWithCode(err, 'LEVEL_LOCKED')) throw err;
    throw new LoomError(
      'LOOM_ERR_STORE_LOCKED',
      `the model store in ${dataDir} is in use by another process — is an agent running on this data ` +
        'dir? Stop it before enrolling again',
      { cause: err },
    );
  }
}

/**
 * Says which port to use when the first request fails in a way that shows the URL is wrong: a
 * server that asks for a client certificate is the agent gateway, not the operator API.
 */
function enrollmentNetworkError(err: unknown, root: string): unknown {
  if (isLoomError(err, 'LOOM_ERR_NETWORK') && err.details?.tls === 'client-certificate-required') {
    return new LoomError(
      'LOOM_ERR_NETWORK',
      `${root} asks for a client certificate: that is the coordinator's agent gateway port. Enroll ` +
        'with the operator API port instead (8443 by default; "loom coordinator start" logs it as api=...)',
      { cause: err, details: err.details },
    );
  }
  if (isLoomError(err, 'LOOM_ERR_NETWORK') && err.details?.tls === 'name-mismatch') {
    return new LoomError(
      'LOOM_ERR_NETWORK',
      `${err.message} of --coordinator (the names were chosen by "loom coordinator init --cert-host")`,
      { cause: err, details: err.details },
    );
  }
  return err;
}

/**
 * Enrolls this host as an agent and writes its identity under `dataDir`. A data dir that holds
 * an identity already is refused (LOOM_ERR_CONFLICT, naming its agent id) before anything is
 * sent, unless `force` is set.
 * @param opts.name default: this host's name
 * @param opts.force default false
 */
export async function enrollAgent(opts: EnrollOptions): Promise<AgentIdentity> {
  const parsed = parseEnrollmentToken(opts.token.trim());
  const previous = await existingIdentity(opts.dataDir);
  if (previous && !opts.force) {
    throw new LoomError(
      'LOOM_ERR_CONFLICT',
      `${opts.dataDir} already holds ${describeIdentity(previous)}; enrolling again would replace its key ` +
        `and certificate. Start it with "loom agent start --data-dir ${opts.dataDir} --data PATH", or ` +
        'choose another --data-dir; to replace it, enroll again with --force',
      { details: { agentId: previous.agentId } },
    );
  }
  if (previous) await assertNoAgentRunning(opts.dataDir);
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
  const { caCertificate } = await requestJson<{ caCertificate: string }>(`${root}/v1/ca`, {
    insecure: true,
  }).catch((err: unknown) => {
    throw enrollmentNetworkError(err, root);
  });
  assertCaFingerprint(parsed.caFingerprint, caCertificate);

  const name = opts.name ?? hostname();
  const { keyPem, csrPem } = createKeyAndCsr({ commonName: name });
  // From here on the server must present a certificate from the pinned CA.
  const res = await requestJson<EnrollResponse>(`${root}/v1/enroll`, {
    ca: caCertificate,
    body: {
      token: opts.token.trim(),
      csr: csrPem,
      name,
      ...(opts.labels && Object.keys(opts.labels).length > 0 ? { labels: opts.labels } : {}),
    },
  }).catch((err: unknown) => {
    throw enrollmentNetworkError(err, root);
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
  if (previous) opts.onReplace?.(previous);
  await saveIdentity(opts.dataDir, identity);
  return identity;
}

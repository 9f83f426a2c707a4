// The coordinator process: opens the store and PKI, starts the agent gateway and the operator
// API, runs jobs and deploys finished models. One object to start and stop in tests and the CLI.
import { certificateFingerprint, normalizeSerial, RevocationList } from '../certs/index.ts';
import { type BackendChoice, initCompute } from '../shared/compute/index.ts';
import type { Logger } from '../shared/log/index.ts';
import { type ApiServer, createApiApp, RATE_LIMIT_DEFAULTS, startApiServer } from './api/index.ts';
import { type AuditLog, createLevelAuditLog } from './audit/index.ts';
import type { CoordinatorConfig } from './config/index.ts';
import { DeploymentService } from './deployments/index.ts';
import {
  type AgentDirectory,
  createLevelAgentDirectory,
  createLevelTokenStore,
  type TokenStore,
} from './directory/index.ts';
import { EnrollmentService } from './enrollment/index.ts';
import { AgentGateway } from './gateway/index.ts';
import { createLevelJobStore, JobService } from './jobs/index.ts';
import { createLevelRegistry, type ModelRegistry } from './registry/index.ts';
import { dbDir, loadCoordinatorPki } from './setup/index.ts';
import { type CoordinatorDb, openCoordinatorDb } from './store/index.ts';

export interface RunningCoordinator {
  apiPort: number;
  agentPort: number;
  apiUrl: string;
  caFingerprint: string;
  backend: BackendChoice;
  registry: ModelRegistry;
  jobs: JobService;
  agents: AgentDirectory;
  tokens: TokenStore;
  audit: AuditLog;
  gateway: AgentGateway;
  deployments: DeploymentService;
  enrollment: EnrollmentService;
  revocations: RevocationList;
  stop(): Promise<void>;
}

/** Serials compared as numbers: case, colons and leading zeros differ between encoders. */
function sameSerial(a: string, b: string): boolean {
  const na = normalizeSerial(a);
  return na !== undefined && na === normalizeSerial(b);
}

/** Starts a coordinator from an initialised data dir. */
export async function startCoordinator(config: CoordinatorConfig, log: Logger): Promise<RunningCoordinator> {
  const backend = await initCompute();
  log.info('TensorFlow.js backend', {
    backend: backend.name,
    skipped: backend.skipped.join('; ') || undefined,
  });
  const pki = await loadCoordinatorPki(config.dataDir);
  const db: CoordinatorDb = await openCoordinatorDb(dbDir(config.dataDir));
  const registry = createLevelRegistry(db);
  const agents = createLevelAgentDirectory(db);
  const tokens = createLevelTokenStore(db);
  const audit = createLevelAuditLog(db);
  // The directory is the record of revocations; this in-memory list, rebuilt from it at start and
  // kept current by the revoke call, is what every connection is checked against first.
  const revocations = new RevocationList();
  for (const agent of await agents.list()) {
    if (!agent.revoked) continue;
    revocations.revokeAgent(agent.id, new Date(agent.revokedAt ?? agent.enrolledAt));
    revocations.revokeSerial(agent.certSerial);
  }

  const enrollment = new EnrollmentService({
    ca: pki.ca,
    caFingerprint: certificateFingerprint(pki.ca.certPem),
    tokens,
    agents,
    certValiditySec: config.agentCertValiditySec,
    tokenTtlSec: config.enrollmentTokenTtlSec,
  });

  const gateway = new AgentGateway({
    caCertPem: pki.ca.certPem,
    serverCertPem: pki.server.certPem,
    serverKeyPem: pki.server.keyPem,
    host: config.host,
    port: config.agentPort,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    maxPayloadBytes: config.maxFrameBytes,
    log: log.child('gateway'),
    // Revocation and identity are checked at every connection, against the store.
    // Only a revoked agent is told so (LOOM_ERR_CERT_REVOKED): it then stops for good. A serial
    // on the list without its agent is one retired by a renewal, which is not a revocation.
    authorize: async ({ agentId, certSerial }) => {
      if (revocations.agentRevokedAt(agentId) !== undefined) {
        return { ok: false, status: 403, reason: 'agent revoked', code: 'LOOM_ERR_CERT_REVOKED' };
      }
      if (revocations.isRevoked({ subjectCN: agentId, serial: certSerial })) {
        return { ok: false, status: 403, reason: 'certificate superseded', code: 'LOOM_ERR_UNAUTHORIZED' };
      }
      const agent = await agents.find(agentId);
      if (!agent) return { ok: false, status: 403, reason: 'unknown agent', code: 'LOOM_ERR_UNAUTHORIZED' };
      if (agent.revoked) {
        return { ok: false, status: 403, reason: 'agent revoked', code: 'LOOM_ERR_CERT_REVOKED' };
      }
      if (agent.pendingCertSerial && sameSerial(agent.pendingCertSerial, certSerial)) {
        // First connection with a renewed certificate: it becomes current, the old one retires.
        await agents.promotePendingCertificate(agentId);
        revocations.revokeSerial(agent.certSerial);
        return { ok: true };
      }
      if (!sameSerial(agent.certSerial, certSerial)) {
        return { ok: false, status: 403, reason: 'certificate superseded', code: 'LOOM_ERR_UNAUTHORIZED' };
      }
      return { ok: true };
    },
    isRevoked: ({ agentId, certSerial }) => revocations.isRevoked({ subjectCN: agentId, serial: certSerial }),
    renewCertificate: (agentId, csrPem) => enrollment.renew(agentId, csrPem),
  });
  let stopping = false;
  gateway.on('online', (info) => {
    if (stopping) return;
    agents
      .update(info.agentId, { lastSeen: new Date().toISOString(), backend: info.backend })
      .catch((err: unknown) => log.warn('could not record agent online', { error: String(err) }));
  });
  gateway.on('offline', ({ agentId }) => {
    // At shutdown every agent goes offline while the store is closing: nothing to record then.
    if (stopping) return;
    agents
      .update(agentId, { lastSeen: new Date().toISOString() })
      .catch((err: unknown) => log.warn('could not record agent offline', { error: String(err) }));
  });

  const jobs = new JobService({
    store: createLevelJobStore(db),
    registry,
    pool: gateway,
    defaultEngine: config.engine,
    log: log.child('jobs'),
  });
  const deployments = new DeploymentService({
    db,
    gateway,
    registry,
    signer: pki.server,
    log: log.child('deploy'),
  });
  jobs.on('finished', (job) => {
    if (job.state !== 'completed' || job.latestVersion === undefined) return;
    deployments
      .deploy(job.config.model, job.latestVersion)
      .catch((err: unknown) => log.error('deployment failed', { job: job.id, error: String(err) }));
  });

  const agentPort = await gateway.listen();
  const app = createApiApp(
    {
      registry,
      jobs,
      agents,
      tokens,
      audit,
      enrollment,
      deployments,
      gateway,
      caCertPem: pki.ca.certPem,
      caFingerprint: pki.caFingerprint,
      revocations,
      agentPort: () => gateway.port,
      backend: () => backend.name,
      log: log.child('api'),
    },
    {
      enrollRateLimit:
        config.enrollRatePerMinute === 0
          ? false
          : { ...RATE_LIMIT_DEFAULTS, max: config.enrollRatePerMinute },
    },
  );
  let api: ApiServer;
  try {
    api = await startApiServer(app, {
      host: config.host,
      port: config.apiPort,
      certPem: pki.server.certPem,
      keyPem: pki.server.keyPem,
    });
  } catch (err) {
    await gateway.close();
    await db.close();
    throw err;
  }
  const displayHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const apiUrl = `https://${displayHost.includes(':') ? `[${displayHost}]` : displayHost}:${api.port}`;
  log.info('coordinator listening', { api: apiUrl, agentPort, caFingerprint: pki.caFingerprint });
  const resumed = await jobs.resumeUnfinished();
  if (resumed.length > 0) log.info('resumed unfinished jobs', { jobs: resumed.join(',') });

  let stopped = false;
  return {
    apiPort: api.port,
    agentPort,
    apiUrl,
    caFingerprint: pki.caFingerprint,
    backend,
    registry,
    jobs,
    agents,
    tokens,
    audit,
    gateway,
    deployments,
    enrollment,
    revocations,
    async stop() {
      if (stopped) return;
      stopped = true;
      stopping = true;
      await jobs.close();
      await api.close();
      await gateway.close();
      await db.close();
      log.info('coordinator stopped');
    },
  };
}

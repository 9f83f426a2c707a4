// The coordinator process: opens the store and PKI, starts the agent gateway and the operator
// API, runs jobs and evaluations, keeps the registry lifecycle and deploys promoted versions.
// One object to start and stop in tests and the CLI.
import { certificateFingerprint, normalizeSerial, RevocationList } from '../certs/index.ts';
import { type BackendChoice, initCompute } from '../shared/compute/index.ts';
import { LoomError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/log/index.ts';
import { listenError } from '../shared/net/index.ts';
import { clearDamage, ensurePrivateDir } from '../shared/store/index.ts';
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
import { createLevelEvaluationStore, EvaluationService } from './evaluations/index.ts';
import { AgentGateway } from './gateway/index.ts';
import { acceptStoreProblems, checkStore, formatStoreReport, type StoreReport } from './integrity/index.ts';
import { createLevelJobStore, JobService } from './jobs/index.ts';
import { createLevelLifecycleStore, LifecycleService } from './lifecycle/index.ts';
import { type AdminSocket, startAdminSocket } from './local-admin/index.ts';
import { createLevelRegistry, type ModelRegistry } from './registry/index.ts';
import { RetirementService, RolloutService } from './rollouts/index.ts';
import {
  apiUrlFor,
  coordinatorKeyProvider,
  dbDir,
  loadCoordinatorPki,
  openDataDirDb,
  openStoreDataKey,
  readCaPassphrase,
} from './setup/index.ts';
import type { CoordinatorDb } from './store/index.ts';

export interface RunningCoordinator {
  apiPort: number;
  agentPort: number;
  /** The operator API URL, with a host the server certificate names (see `apiUrlFor`). */
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
  rollouts: RolloutService;
  retirements: RetirementService;
  evaluations: EvaluationService;
  lifecycle: LifecycleService;
  enrollment: EnrollmentService;
  revocations: RevocationList;
  /** The store check made at start. */
  storeReport: StoreReport;
  stop(): Promise<void>;
}

/** Options of `startCoordinator` that are about this start only, not settings. */
export interface StartOptions {
  /**
   * Start even when the store check finds damage; the problems are logged, audited as accepted,
   * and no longer stop later starts (new problems still do). Default false.
   */
  ignoreStoreDamage?: boolean;
}

/** Serials compared as numbers: case, colons and leading zeros differ between encoders. */
function sameSerial(a: string, b: string): boolean {
  const na = normalizeSerial(a);
  return na !== undefined && na === normalizeSerial(b);
}

/**
 * Starts a coordinator from an initialised data dir. The store is checked first; damage it finds
 * stops the start with LOOM_ERR_STORE_DAMAGED and the report, unless `start.ignoreStoreDamage`.
 * A port already taken is LOOM_ERR_ADDRESS_IN_USE and a database held by another process
 * LOOM_ERR_STORE_LOCKED, each saying what to change.
 */
export async function startCoordinator(
  config: CoordinatorConfig,
  log: Logger,
  start: StartOptions = {},
): Promise<RunningCoordinator> {
  const backend = await initCompute();
  log.info('TensorFlow.js backend', {
    backend: backend.name,
    skipped: backend.skipped.join('; ') || undefined,
  });
  const pki = await loadCoordinatorPki(config.dataDir, await readCaPassphrase(config.caPassphraseFile));
  // Kept private at every start: a folder restored or copied with a wide mode is closed again.
  await ensurePrivateDir(config.dataDir);
  await ensurePrivateDir(dbDir(config.dataDir));
  const db: CoordinatorDb = await openDataDirDb(config.dataDir);
  let registry: ModelRegistry;
  let storeReport: StoreReport;
  const agents = createLevelAgentDirectory(db);
  const tokens = createLevelTokenStore(db);
  const audit = createLevelAuditLog(db);
  const jobStore = createLevelJobStore(db);
  try {
    const dataKey = await openStoreDataKey(db, coordinatorKeyProvider(config));
    registry = createLevelRegistry(db, { dataKey });
    storeReport = await checkStore({ db, registry, jobs: jobStore, agents, tokens, audit, dataKey });
    if (!storeReport.ok) {
      if (!start.ignoreStoreDamage) {
        throw new LoomError(
          'LOOM_ERR_STORE_DAMAGED',
          `the store in ${dbDir(config.dataDir)} is damaged; the coordinator did not start:\n${formatStoreReport(storeReport)}\n` +
            'Restore a backup ("loom coordinator restore"), or start anyway with --ignore-store-damage to accept these problems.',
          { details: { problems: storeReport.problems } },
        );
      }
      for (const p of storeReport.problems)
        log.error('store damage accepted at start', { kind: p.kind, problem: p.message });
      await acceptStoreProblems(db, storeReport, 'local: loom coordinator start --ignore-store-damage');
      await clearDamage(db.dir);
      // A job whose records were damaged is not resumed (it could train again what it had
      // finished): it ends as failed, saying why, and an operator decides what to run next.
      for (const jobId of new Set(storeReport.problems.flatMap((p) => (p.job ? [p.job] : [])))) {
        const job = await jobStore.get(jobId).catch(() => undefined);
        if (!job || (job.state !== 'running' && job.state !== 'pending')) continue;
        await jobStore.put(
          {
            ...job,
            state: 'failed',
            finishedAt: new Date().toISOString(),
            error: {
              code: 'LOOM_ERR_STORE_DAMAGED',
              message: 'its records were damaged on disk; it was not resumed',
            },
          },
          {
            audit: {
              actor: 'local: loom coordinator start --ignore-store-damage',
              action: 'job.fail',
              target: jobId,
            },
          },
        );
        log.error('job not resumed: its records were damaged', { job: jobId });
      }
    }
    for (const p of storeReport.accepted)
      log.warn('known store damage', { kind: p.kind, problem: p.message });
  } catch (err) {
    await db.close();
    throw err;
  }
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
    chunkBytes: config.chunkBytes,
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

  const deployments = new DeploymentService({
    db,
    gateway,
    registry,
    agents,
    signer: pki.server,
    log: log.child('deploy'),
  });
  const rollouts = new RolloutService({
    db,
    deployments,
    agents,
    registry,
    gateway,
    log: log.child('rollouts'),
    tickMs: config.rolloutTickMs,
  });
  const retirements = new RetirementService({
    db,
    registry,
    agents,
    deployments,
    rollouts,
    gateway,
    log: log.child('retire'),
  });
  await rollouts.start();
  const evaluations = new EvaluationService({
    store: createLevelEvaluationStore(db),
    registry,
    pool: gateway,
    directory: agents,
    log: log.child('evaluations'),
  });
  // The one place a promotion reaches the sites: at once, to every agent. A staged rollout of a
  // promoted version is started through POST /v1/rollouts.
  const lifecycle = new LifecycleService({
    store: createLevelLifecycleStore(db),
    registry,
    latestEvaluation: (model, version) => evaluations.latestCompleted(model, version),
    onPromoted: (model, version) => deployments.deploy(model, version),
    log: log.child('lifecycle'),
  });
  const jobs = new JobService({
    store: jobStore,
    registry,
    pool: gateway,
    evaluator: evaluations,
    // A completed job deploys nothing itself: its final version is a candidate, promoted (and so
    // deployed) only through the gate, with `promote: "if-better"` or by an operator.
    promoter: (job) =>
      lifecycle
        .settleCandidate(job.config.model, job.latestVersion!, {
          actor: job.createdBy,
          ifBetter: job.config.promote === 'if-better',
        })
        .then((settled) => ({ version: job.latestVersion!, ...settled })),
    defaultEngine: config.engine,
    directory: agents,
    log: log.child('jobs'),
  });

  let agentPort: number;
  try {
    agentPort = await gateway.listen();
  } catch (err) {
    await db.close();
    throw listenError(err, {
      service: 'the agent gateway',
      host: config.host,
      port: config.agentPort,
      portOption: '--agent-port (or LOOM_AGENT_PORT)',
      hostOption: '--bind',
      likelyHolder: 'another coordinator',
    });
  }
  const app = createApiApp(
    {
      registry,
      jobs,
      agents,
      tokens,
      audit,
      enrollment,
      deployments,
      rollouts,
      retirements,
      evaluations,
      lifecycle,
      gateway,
      caCertPem: pki.ca.certPem,
      caFingerprint: pki.caFingerprint,
      revocations,
      agentPort: () => gateway.port,
      backend: () => backend.name,
      log: log.child('api'),
    },
    {
      maxModelBytes: config.maxPayloadBytes,
      enrollRateLimit:
        config.enrollRatePerMinute === 0
          ? false
          : { ...RATE_LIMIT_DEFAULTS, max: config.enrollRatePerMinute },
    },
  );
  let api: ApiServer;
  let adminSocket: AdminSocket | undefined;
  try {
    adminSocket = await startAdminSocket({ dataDir: config.dataDir, db, log: log.child('admin') });
    api = await startApiServer(app, {
      host: config.host,
      port: config.apiPort,
      certPem: pki.server.certPem,
      keyPem: pki.server.keyPem,
    });
  } catch (err) {
    await adminSocket?.close();
    await gateway.close();
    await db.close();
    throw listenError(err, {
      service: 'the operator API',
      host: config.host,
      port: config.apiPort,
      portOption: '--api-port (or LOOM_API_PORT)',
      hostOption: '--bind',
      likelyHolder: 'another coordinator',
    });
  }
  // A URL people can paste: its host is one the server certificate names, never a bare 0.0.0.0.
  const { url: apiUrl, matchesBind } = apiUrlFor(config.host, config.hosts, api.port);
  if (!matchesBind) {
    log.warn('the bind address is not a name in the server certificate; clients must use one that is', {
      bind: config.host,
      certificateHosts: config.hosts.join(','),
    });
  }
  log.info('coordinator listening', {
    api: apiUrl,
    agentPort,
    bind: config.host,
    caFingerprint: pki.caFingerprint,
  });
  const failedEvaluations = await evaluations.failUnfinished();
  if (failedEvaluations.length > 0) {
    log.warn('evaluations left running by the previous process marked failed', {
      evaluations: failedEvaluations.join(','),
    });
  }
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
    rollouts,
    retirements,
    evaluations,
    lifecycle,
    enrollment,
    revocations,
    storeReport,
    async stop() {
      if (stopped) return;
      stopped = true;
      stopping = true;
      rollouts.close();
      await jobs.close();
      await evaluations.close();
      await api.close();
      await adminSocket?.close();
      await gateway.close();
      await db.close();
      log.info('coordinator stopped');
    },
  };
}

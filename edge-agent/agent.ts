// The edge agent process: its identity, local data, local model store and inference server,
// and the coordinator link over which it takes training tasks and receives model versions.
import { certificateInfo, createKeyAndCsr, verifyCertificateChain } from '../certs/index.ts';
import { type BackendChoice, initCompute } from '../shared/compute/index.ts';
import type { DataKey } from '../shared/crypto/index.ts';
import { isLoomError, LoomError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/log/index.ts';
import { listenError } from '../shared/net/index.ts';
import {
  type ActivateBody,
  checkAgainstManifest,
  type DatasetSummary,
  type DeployBody,
  decodeTensorBytes,
  type EvaluateBody,
  encodeTensorBytes,
  HOLDOUT_DEFAULTS,
  type Message,
  PROTOCOL_VERSIONS,
  type TrainBody,
  verifyDeployment,
} from '../shared/protocol/index.ts';
import { sha256Hex } from '../shared/tensors/index.ts';
import { LOOM_VERSION } from '../shared/version/index.ts';
import { ApiKeyRing } from './api-keys/index.ts';
import { CoordinatorConnection } from './connection/index.ts';
import {
  checkDataset,
  type DataFormat,
  type DatasetSplit,
  dataProblemsError,
  datasetManifest,
  datasetSeed,
  type LocalDataset,
  loadDataset,
  manifestFingerprint,
  splitDataset,
  summarizeDataset,
} from './data/index.ts';
import {
  type AgentIdentity,
  loadIdentity,
  loadRevocationRecord,
  type RevocationRecord,
  saveIdentity,
  saveRevocationRecord,
} from './identity/index.ts';
import {
  type BatchingOptions,
  ModelServer,
  RetirementBook,
  type RunningGrpcInferenceServer,
  ServingStats,
  startGrpcInferenceServer,
  startInferenceServer,
} from './inference/index.ts';
import { type LocalModelStore, openLocalModelStore } from './store/index.ts';
import {
  DEFAULT_TRAINING_THREADS,
  defaultTrainingPath,
  evaluateLocally,
  FastTrainingPool,
  TrainingDataCache,
  type TrainingPath,
  trainLocally,
} from './training/index.ts';

/** The agent's version as sent in `hello`: Loom's own, from package.json. */
export const AGENT_VERSION = LOOM_VERSION;

export interface EdgeAgentOptions {
  dataDir: string;
  /** Local training data (never uploaded). */
  dataPath: string;
  format?: DataFormat;
  labelColumn?: string;
  /** IDX only: the labels file (default: found next to the images file). */
  labelsPath?: string;
  /** CSV only: the column separator (default `,`). */
  csvSeparator?: string;
  /** Inference server address (default 127.0.0.1:8501; port 0 picks a free port). */
  inferenceHost?: string;
  inferencePort?: number;
  /** Overrides the gateway URL saved at enrollment. */
  agentUrl?: string;
  /** Renew the client certificate once less than this share of its lifetime is left (default 1/3). */
  renewAtRemainingFraction?: number;
  /** Key of the local model store. Default: `<dataDir>/data.key`, created on first use. */
  dataKey?: DataKey;
  /**
   * Keep answering predictions once the coordinator has revoked this agent. Default false: a
   * revoked agent no longer receives updates, rollbacks or retirements, so its models are no
   * longer managed and it stops serving them (health stays up and says revoked).
   */
  serveWhenRevoked?: boolean;
  /**
   * Refuse inference requests without a live API key even while the site has made none.
   * Default false: keys are required once `loom agent api-key create` has made one.
   */
  requireApiKey?: boolean;
  /** Serve the inference API over HTTPS with this certificate and key. Default: plain HTTP. */
  inferenceTls?: { certPath: string; keyPath: string };
  /**
   * Also serve the gRPC form of the inference API (inference.GRPCInferenceService) on this port
   * of `inferenceHost` (0: any free port), over TLS with `inferenceTls` when given. Default: off.
   */
  grpcPort?: number;
  /** How often serving health (requests, errors, latency per version) is reported, in ms. Default 10 000. */
  healthIntervalMs?: number;
  /** Versions of each model kept in the local store (the active one included), for rollbacks. Default 3. */
  keepVersions?: number;
  /**
   * Worker threads the fast training path trains on. Default: one per core
   * (DEFAULT_TRAINING_THREADS). Heartbeats, the coordinator channel and inference stay on the
   * agent's own thread either way.
   */
  trainingThreads?: number;
  /** Dynamic batching of inference requests, for every model. Default `BATCHING_DEFAULTS`. */
  inferenceBatching?: BatchingOptions;
  /** Dynamic batching of particular models by name, over `inferenceBatching`. Default: none. */
  modelBatching?: Record<string, BatchingOptions>;
  log: Logger;
}

export const EDGE_AGENT_DEFAULTS = {
  inferenceHost: '127.0.0.1',
  inferencePort: 8501,
  renewAtRemainingFraction: 1 / 3,
  /** How often the certificate's remaining lifetime is checked while connected. */
  renewalCheckMs: 60 * 60 * 1000,
  healthIntervalMs: 10_000,
  keepVersions: 3,
} as const;

export interface EdgeAgentStatus {
  agentId: string;
  name: string;
  connected: boolean;
  backend: string;
  examples: number;
  inferenceUrl: string;
  /** `host:port` of the gRPC inference API, when it is served. */
  grpcAddress?: string;
  models: { name: string; version: number }[];
  tasksCompleted: number;
  /** What the start-up check found wrong with the model store (empty when it was whole). */
  storeProblems: string[];
  /** Damaged records the start-up check removed from the model store. */
  storeRepairs: string[];
  /** Whether the coordinator has revoked this agent (kept in the data dir across restarts). */
  revoked: boolean;
  /** When the agent learnt of its revocation (ISO 8601), if it is revoked. */
  revokedAt?: string;
  /** Whether it still answers predictions: always when not revoked, else only with serveWhenRevoked. */
  serving: boolean;
  /** Whether the inference API asks for an API key now. */
  apiKeyRequired: boolean;
  /**
   * What trains local models: the path of the last training, or before any, the one a model
   * the fast path supports would train on (`wasm-simd-fused`, or `tfjs-node` when installed).
   */
  trainingPath: TrainingPath;
  /** Worker threads of the fast path. */
  trainingThreads: number;
}

/** Whether `host` is only reachable from this machine. */
function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * The metrics worth sending: the protocol carries finite numbers only, and one NaN loss from a
 * diverged run would otherwise make the whole result a malformed frame. The update itself is
 * sent as it is, so the coordinator judges it (and records a rejected update).
 */
function finiteMetrics(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v)));
}

export class EdgeAgent {
  private identity?: AgentIdentity;
  private store?: LocalModelStore;
  private server?: ModelServer;
  private inference?: { port: number; url: string; close(): Promise<void> };
  private grpc?: RunningGrpcInferenceServer;
  private connection?: CoordinatorConnection;
  private dataset?: LocalDataset;
  private summary?: DatasetSummary;
  /** SHA-256 of the local data's manifest, computed once at start (see datasetFingerprint). */
  private dataFingerprint?: string;
  private backend?: BackendChoice;
  /** Tasks run one at a time: the data and the CPU are shared. */
  private queue: Promise<void> = Promise.resolve();
  /**
   * One per training task queued or running, so a `cancel` can stop it; removed when the task
   * ends, so cancels for finished or unknown tasks leave nothing behind.
   */
  private readonly trainings = new Map<string, AbortController>();
  private tasksCompleted = 0;
  /** What the start-up check found wrong with the model store, and what it removed. */
  private storeProblems: string[] = [];
  private storeRepairs: string[] = [];
  private readonly trainingData = new TrainingDataCache();
  private readonly trainingPool: FastTrainingPool;
  private lastTrainingPath?: TrainingPath;
  /** The train / hold-out splits made so far, by hold-out share (a model names its own). */
  private readonly splits = new Map<number, DatasetSplit>();
  /** Seed of every split: a hash of the local data, computed once. */
  private splitSeed?: string;
  private renewing?: Promise<void>;
  private renewalTimer?: NodeJS.Timeout;
  /** Set once the coordinator has said this agent is revoked; never cleared (enroll again instead). */
  private revocation?: RevocationRecord;
  private apiKeys?: ApiKeyRing;
  private readonly stats = new ServingStats();
  private retirements = RetirementBook.inMemory();
  private healthTimer?: NodeJS.Timeout;
  /** Versions the local store holds, as the hello lists them (kept current after each change). */
  private storedVersions: { name: string; version: number }[] = [];
  private readonly log: Logger;

  constructor(private readonly opts: EdgeAgentOptions) {
    this.log = opts.log;
    const interval = opts.healthIntervalMs ?? EDGE_AGENT_DEFAULTS.healthIntervalMs;
    if (!Number.isSafeInteger(interval) || interval < 10) {
      throw new TypeError(`healthIntervalMs must be an integer of at least 10, got ${interval}`);
    }
    const keep = opts.keepVersions ?? EDGE_AGENT_DEFAULTS.keepVersions;
    if (!Number.isSafeInteger(keep) || keep < 1) {
      throw new TypeError(`keepVersions must be a positive integer, got ${keep}`);
    }
    this.trainingPool = new FastTrainingPool({ threads: opts.trainingThreads ?? DEFAULT_TRAINING_THREADS });
  }

  /**
   * Starts serving local models first (works offline), then connects to the coordinator. A model
   * store held by another process is LOOM_ERR_STORE_LOCKED, an inference port already taken
   * LOOM_ERR_ADDRESS_IN_USE.
   */
  async start(): Promise<void> {
    this.backend = await initCompute();
    this.log.info('TensorFlow.js backend', {
      backend: this.backend.name,
      skipped: this.backend.skipped.join('; '),
    });
    this.identity = await loadIdentity(this.opts.dataDir);
    this.dataset = await loadDataset(this.opts.dataPath, {
      ...(this.opts.format ? { format: this.opts.format } : {}),
      ...(this.opts.labelColumn ? { labelColumn: this.opts.labelColumn } : {}),
      ...(this.opts.labelsPath ? { labelsPath: this.opts.labelsPath } : {}),
      ...(this.opts.csvSeparator ? { separator: this.opts.csvSeparator } : {}),
    });
    this.summary = summarizeDataset(this.dataset);
    // One pass over the data gives the split seed and the fingerprint that names it.
    const manifest = await datasetManifest(this.dataset);
    this.splitSeed = manifest.splitSeed;
    this.dataFingerprint = manifestFingerprint(manifest);
    this.log.info('local data loaded', {
      source: this.dataset.source,
      examples: this.dataset.count,
      features: this.dataset.featureShape.join('x'),
    });
    this.store = await openLocalModelStore(
      this.opts.dataDir,
      this.opts.dataKey ? { dataKey: this.opts.dataKey } : {},
    );
    // A damaged store serves only what is intact: damaged versions are dropped and the coordinator,
    // told by the next hello what is here, sends them again.
    const problems = await this.store.check({ full: true });
    if (problems.length > 0) {
      for (const p of problems)
        this.log.error('model store damage found', { kind: p.kind, problem: p.message });
      const { removed } = await this.store.repair();
      this.storeRepairs = removed;
      this.storeProblems = problems.map((p) => `[${p.kind}] ${p.message}`);
      this.log.error('model store repaired; the coordinator will resend what was lost', {
        removed: removed.join(', ') || 'nothing',
      });
    }
    this.server = new ModelServer(this.store, {
      log: this.log.child('models'),
      ...(this.opts.inferenceBatching ? { batching: this.opts.inferenceBatching } : {}),
      ...(this.opts.modelBatching ? { modelBatching: this.opts.modelBatching } : {}),
    });
    // A damaged model is logged and skipped: the others still serve, and the coordinator can
    // send a good copy once connected.
    await this.server.loadActive();
    // Data that cannot train a model this site serves is reported now, every problem at once,
    // not round after round when the coordinator asks (then the task is declined for good).
    for (const served of this.server.list()) {
      const problems = checkDataset(this.dataset, served.inputShape, served.classes);
      if (problems.length === 0) continue;
      this.log.error(`local data cannot train model ${served.name}`, {
        reason: dataProblemsError(this.dataset.source, problems).message,
      });
    }
    this.revocation = await loadRevocationRecord(this.opts.dataDir, this.identity.agentId);
    const serveWhenRevoked = this.opts.serveWhenRevoked ?? false;
    const apiKeys = await ApiKeyRing.open(this.opts.dataDir, {
      requireKey: this.opts.requireApiKey ?? false,
      log: this.log.child('api-keys'),
    });
    this.apiKeys = apiKeys;
    this.retirements = await RetirementBook.open(this.opts.dataDir);
    const host = this.opts.inferenceHost ?? EDGE_AGENT_DEFAULTS.inferenceHost;
    const inferencePort = this.opts.inferencePort ?? EDGE_AGENT_DEFAULTS.inferencePort;
    // What the REST and the gRPC inference servers share: the same checks, keys, TLS and stats.
    const serving = {
      host,
      revocation: () => this.revocation,
      serveWhenRevoked,
      authorize: (header: string | undefined) => apiKeys.authorize(header),
      stats: this.stats,
      retirements: this.retirements,
      ...(this.opts.inferenceTls ? { tls: this.opts.inferenceTls } : {}),
      log: this.log.child('inference'),
    };
    try {
      this.inference = await startInferenceServer(this.server, { ...serving, port: inferencePort });
    } catch (err) {
      throw listenError(err, {
        service: 'the inference server',
        host,
        port: inferencePort,
        portOption: '--inference-port',
        hostOption: '--inference-host',
        likelyHolder: 'another agent',
      });
    }
    this.log.info('inference server listening', {
      url: this.inference.url,
      apiKey: apiKeys.required ? 'required' : 'not required',
    });
    if (this.opts.grpcPort !== undefined) {
      try {
        this.grpc = await startGrpcInferenceServer(this.server, { ...serving, port: this.opts.grpcPort });
      } catch (err) {
        throw listenError(err, {
          service: 'the gRPC inference server',
          host,
          port: this.opts.grpcPort,
          portOption: '--grpc-port',
          hostOption: '--inference-host',
          likelyHolder: 'another agent',
        });
      }
      this.log.info('gRPC inference server listening', {
        address: this.grpc.address,
        tls: !!this.opts.inferenceTls,
      });
    }
    if (!isLoopback(host) && !apiKeys.required) {
      this.log.warn(
        `THE INFERENCE API ON ${host} NEEDS NO API KEY: anyone who can reach this port can use the models. ` +
          `Make a key with "loom agent api-key create --data-dir ${this.opts.dataDir}" ` +
          '(or start with --require-api-key), or listen on 127.0.0.1.',
        { url: this.inference.url },
      );
    } else if (!isLoopback(host) && !this.opts.inferenceTls) {
      this.log.warn(
        'inference API keys cross the network in clear text; consider --inference-tls-cert/--inference-tls-key',
        {
          url: this.inference.url,
        },
      );
    }
    if (this.revocation) {
      // The coordinator would refuse every connection, so none is tried.
      this.logRevoked('this agent was revoked by its coordinator earlier', this.revocation);
      return;
    }

    await this.refreshStored();
    const id = this.identity;
    this.connection = new CoordinatorConnection({
      url: this.opts.agentUrl ?? id.agentUrl,
      certPem: id.certPem,
      keyPem: id.keyPem,
      caPem: id.caPem,
      hello: () => ({
        protocolVersions: [...PROTOCOL_VERSIONS],
        agentVersion: AGENT_VERSION,
        backend: this.backend?.name ?? 'unknown',
        models: this.server?.list().map((m) => ({ name: m.name, version: m.version })) ?? [],
        dataset: this.summary!,
        runtime: process.version,
        training: this.lastTrainingPath ?? defaultTrainingPath(),
        ...(this.dataFingerprint ? { dataFingerprint: this.dataFingerprint } : {}),
        ...(this.storedVersions.length > 0 ? { stored: this.storedVersions.slice(-4096) } : {}),
      }),
      log: this.log.child('link'),
    });
    this.connection.on('message', (msg) => this.onMessage(msg));
    this.connection.on('connected', () => void this.renewIfDue());
    // The coordinator fails a disconnected agent's tasks at once; finishing them would be wasted work.
    this.connection.on('disconnected', () => this.abortTrainings());
    this.renewalTimer = setInterval(() => void this.renewIfDue(), EDGE_AGENT_DEFAULTS.renewalCheckMs);
    this.renewalTimer.unref();
    this.healthTimer = setInterval(
      () => this.reportHealth(),
      this.opts.healthIntervalMs ?? EDGE_AGENT_DEFAULTS.healthIntervalMs,
    );
    this.healthTimer.unref();
    this.connection.on('rejected', (err) => {
      if (err.code === 'LOOM_ERR_CERT_REVOKED') void this.onRevoked(err);
      else this.log.error('coordinator link ended', { code: err.code });
    });
    this.connection.start();
  }

  /**
   * Stops serving (unless serveWhenRevoked) the moment the coordinator says this agent is
   * revoked, and records it in the data dir so a restart stays revoked.
   */
  private async onRevoked(err: LoomError): Promise<void> {
    if (this.revocation || !this.identity) return;
    const record: RevocationRecord = {
      agentId: this.identity.agentId,
      revokedAt: new Date().toISOString(),
      reason: err.message,
    };
    this.revocation = record;
    clearInterval(this.renewalTimer);
    this.logRevoked('the coordinator has revoked this agent', record);
    try {
      await saveRevocationRecord(this.opts.dataDir, record);
    } catch (saveErr) {
      this.log.error('cannot record the revocation in the data dir; a restart would try to connect again', {
        error: saveErr instanceof Error ? saveErr.message : String(saveErr),
      });
    }
  }

  private logRevoked(message: string, record: RevocationRecord): void {
    const serving = this.opts.serveWhenRevoked ?? false;
    this.log.error(message, {
      code: 'LOOM_ERR_CERT_REVOKED',
      revokedAt: record.revokedAt,
      reason: record.reason,
      consequence: serving
        ? 'still serving predictions (--serve-when-revoked), but its models no longer get updates, rollbacks or retirements'
        : 'predictions answer 503 from now on: its models no longer get updates, rollbacks or retirements',
      remedy: 'enroll this data dir again to give the site a new identity',
    });
  }

  status(): EdgeAgentStatus {
    return {
      agentId: this.identity?.agentId ?? '',
      name: this.identity?.name ?? '',
      connected: this.connection?.connected ?? false,
      backend: this.backend?.name ?? 'unknown',
      examples: this.dataset?.count ?? 0,
      inferenceUrl: this.inference?.url ?? '',
      ...(this.grpc ? { grpcAddress: this.grpc.address } : {}),
      models: this.server?.list().map((m) => ({ name: m.name, version: m.version })) ?? [],
      tasksCompleted: this.tasksCompleted,
      storeProblems: [...this.storeProblems],
      storeRepairs: [...this.storeRepairs],
      revoked: this.revocation !== undefined,
      ...(this.revocation ? { revokedAt: this.revocation.revokedAt } : {}),
      serving: this.revocation === undefined || (this.opts.serveWhenRevoked ?? false),
      apiKeyRequired: this.apiKeys?.required ?? false,
      trainingPath: this.lastTrainingPath ?? defaultTrainingPath(),
      trainingThreads: this.trainingPool.threads,
    };
  }

  /**
   * Sends what the inference server counted since the last report; while disconnected the
   * counts are kept and go with the next report.
   */
  private reportHealth(): void {
    if (!this.connection?.connected) return;
    const versions = this.stats.take();
    if (versions.length === 0) return;
    try {
      this.connection.send('serving-health', {
        intervalMs: this.opts.healthIntervalMs ?? EDGE_AGENT_DEFAULTS.healthIntervalMs,
        versions,
      });
    } catch {
      this.stats.restore(versions);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.renewalTimer);
    clearInterval(this.healthTimer);
    await this.connection?.stop();
    this.abortTrainings();
    await this.queue.catch(() => undefined);
    await this.inference?.close();
    await this.grpc?.close();
    this.apiKeys?.close();
    this.server?.dispose();
    this.trainingData.dispose();
    await this.trainingPool.close();
    await this.store?.close();
  }

  /**
   * Renews the client certificate over the mTLS channel when little of its lifetime is left: a
   * new key made here, a CSR, the signed certificate saved, then a reconnect that presents it,
   * once the tasks already queued (a training in progress, say) have finished.
   */
  renewIfDue(now = new Date()): Promise<void> {
    const id = this.identity;
    if (!id || !this.connection?.connected) return Promise.resolve();
    const cert = certificateInfo(id.certPem);
    const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
    const fraction = this.opts.renewAtRemainingFraction ?? EDGE_AGENT_DEFAULTS.renewAtRemainingFraction;
    if (cert.notAfter.getTime() - now.getTime() > lifetime * fraction) return Promise.resolve();
    this.renewing ??= this.renewCertificate(id).finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private async renewCertificate(id: AgentIdentity): Promise<void> {
    try {
      const { keyPem, csrPem } = createKeyAndCsr({ commonName: id.agentId });
      const reply = await this.connection!.request('renew', { csr: csrPem });
      if (reply.type !== 'renewed')
        throw new LoomError('LOOM_ERR_PROTOCOL', `expected renewed, got ${reply.type}`);
      verifyCertificateChain(id.caPem, reply.body.certificate);
      if (certificateInfo(reply.body.certificate).subjectCN !== id.agentId) {
        throw new LoomError('LOOM_ERR_PKI', 'the renewed certificate names another agent');
      }
      const renewed: AgentIdentity = { ...id, keyPem, certPem: reply.body.certificate };
      await saveIdentity(this.opts.dataDir, renewed);
      this.identity = renewed;
      this.connection!.setCredentials(renewed.certPem, renewed.keyPem);
      this.log.info('client certificate renewed', { notAfter: reply.body.notAfter });
      // Reconnecting fails the task in flight (the coordinator drops a disconnected agent's
      // tasks), so it waits in the queue behind the tasks already there.
      this.enqueue(async () => this.connection?.reconnectNow());
    } catch (err) {
      this.log.warn('certificate renewal failed; will retry', {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /**
   * Queues a task the coordinator can cancel: a task sent again under the same id replaces the
   * one before it.
   */
  private runTask(taskId: string, run: (signal: AbortSignal) => Promise<void>): void {
    const controller = new AbortController();
    this.trainings.get(taskId)?.abort();
    this.trainings.set(taskId, controller);
    this.enqueue(() =>
      run(controller.signal).finally(() => {
        if (this.trainings.get(taskId) === controller) this.trainings.delete(taskId);
      }),
    );
  }

  private onMessage(msg: Message): void {
    switch (msg.type) {
      case 'train':
        this.runTask(msg.body.taskId, (signal) => this.runTrain(msg.body, signal));
        return;
      case 'evaluate':
        this.runTask(msg.body.taskId, (signal) => this.runEvaluate(msg.body, signal));
        return;
      case 'deploy':
        this.enqueue(() => this.runDeploy(msg.body));
        return;
      case 'activate':
        this.enqueue(() => this.runActivate(msg.body));
        return;
      case 'retirement':
        this.retirements.add(msg.body).then(
          () =>
            this.log.info('model version retired', {
              model: msg.body.name,
              version: msg.body.version,
              successor: msg.body.successor,
              sunset: msg.body.sunsetAt,
            }),
          (err: unknown) => this.log.warn('cannot record a retirement', { error: String(err) }),
        );
        return;
      case 'cancel':
        // Unknown ids (finished tasks, or tasks of an earlier connection) need no memory.
        this.trainings.get(msg.body.taskId)?.abort();
        return;
      case 'error':
        this.log.warn('coordinator reported an error', { code: msg.body.code, message: msg.body.message });
        return;
      default:
        this.log.warn('ignoring unexpected frame', { type: msg.type });
    }
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((err: unknown) => {
      this.log.error('task handler failed', { error: err instanceof Error ? err.message : String(err) });
    });
  }

  /** Aborts every queued and running training task; they end without sending anything. */
  private abortTrainings(): void {
    for (const controller of this.trainings.values()) controller.abort();
  }

  private async runTrain(task: TrainBody, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const dataset = this.dataset;
    if (!dataset || !this.connection) return;
    this.log.info('training', {
      job: task.jobId,
      round: task.round,
      model: `${task.model.name}@${task.model.version}`,
    });
    try {
      const global = decodeTensorBytes(task.weights);
      // The hold-out part is never trained on, so evaluations score data the model has not seen.
      const { train } = this.split(dataset, task.holdoutFraction ?? HOLDOUT_DEFAULTS.fraction);
      const result = await trainLocally({
        architecture: task.model.architecture,
        global,
        dataset: train,
        hyper: task.hyper,
        cache: this.trainingData,
        signal,
        pool: this.trainingPool,
        log: this.log,
      });
      this.lastTrainingPath = result.trainingPath;
      if (signal.aborted) return;
      const metrics = finiteMetrics(result.metrics);
      const dropped = Object.keys(result.metrics).filter((k) => !(k in metrics));
      if (dropped.length > 0) {
        this.log.warn('local training diverged; sending the update without its non-finite metrics', {
          job: task.jobId,
          round: task.round,
          metrics: dropped.join(','),
        });
      }
      this.connection.send('train-result', {
        taskId: task.taskId,
        jobId: task.jobId,
        round: task.round,
        numExamples: result.numExamples,
        metrics,
        update: encodeTensorBytes(result.update),
        trainMs: result.trainMs,
        trainingPath: result.trainingPath,
      });
      this.tasksCompleted++;
      this.log.info('update sent', {
        job: task.jobId,
        round: task.round,
        examples: result.numExamples,
        loss: result.metrics.loss,
        accuracy: result.metrics.accuracy,
        ms: result.trainMs,
        path: result.trainingPath,
      });
    } catch (err) {
      if (signal.aborted) {
        this.log.info('training cancelled', { job: task.jobId, round: task.round });
        return;
      }
      const { code, message, permanent } = this.sendTaskError(task.taskId, err);
      this.log.warn(
        permanent ? 'declining the job: the local data cannot serve this model' : 'training failed',
        { job: task.jobId, round: task.round, code, message },
      );
    }
  }

  /**
   * Tells the coordinator a task failed, and why. Data that cannot serve this model will not
   * serve it next time either: such a failure is permanent, and the coordinator stops asking this
   * site for the job.
   */
  private sendTaskError(taskId: string, err: unknown): { code: string; message: string; permanent: boolean } {
    const code = isLoomError(err) ? err.code : 'LOOM_ERR_INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    const permanent = code === 'LOOM_ERR_DATA' || code === 'LOOM_ERR_MODEL_SPEC';
    try {
      this.connection?.send('task-error', { taskId, code, message, ...(permanent ? { permanent } : {}) });
    } catch {
      // Disconnected: the coordinator has already counted the task as failed.
    }
    return { code, message, permanent };
  }

  /** Keeps the last `keepVersions` versions of a model in the store: older ones would never be rolled back to. */
  private async pruneStore(name: string): Promise<void> {
    try {
      const removed = await this.store?.prune(
        name,
        this.opts.keepVersions ?? EDGE_AGENT_DEFAULTS.keepVersions,
      );
      if (removed && removed.length > 0)
        this.log.info('old model versions removed', { model: name, versions: removed.join(',') });
    } catch (err) {
      this.log.warn('cannot remove old model versions', { model: name, error: String(err) });
    }
  }

  private async refreshStored(): Promise<void> {
    try {
      this.storedVersions = ((await this.store?.list()) ?? []).map((v) => ({
        name: v.name,
        version: v.version,
      }));
    } catch {
      this.storedVersions = [];
    }
  }

  /**
   * Serves a version the store holds (a rollback without a download), once its stored weights
   * are shown to be the ones the coordinator signed: re-encoded as a deploy carries them, they
   * must hash to the signed SHA-256.
   */
  private async runActivate(body: ActivateBody): Promise<void> {
    const { name, version } = body.model;
    const ack = (ok: boolean, error?: string, code?: string): void => {
      try {
        this.connection?.send('deploy-ack', {
          name,
          version,
          ok,
          ...(error ? { error } : {}),
          ...(code ? { code } : {}),
        });
      } catch {
        // Disconnected: the coordinator sends the target again on the next hello.
      }
    };
    try {
      if (!this.identity || !this.store) throw new LoomError('LOOM_ERR_INVALID_CONFIG', 'agent has no store');
      const manifest = verifyDeployment(
        body.model,
        body.sha256,
        body.signature,
        body.signerCertificate,
        this.identity.caPem,
        new Date(),
        body.manifest,
      );
      const { weights } = await this.store.get(name, version);
      const bytes = encodeTensorBytes(weights);
      if (manifest) checkAgainstManifest(manifest, bytes);
      else if (sha256Hex(bytes) !== body.sha256) {
        throw new LoomError(
          'LOOM_ERR_INTEGRITY',
          `the stored copy of ${name}@${version} is not the signed one`,
        );
      }
      await this.store.setActive(name, version);
      await this.server?.load(name, version);
      this.log.info('stored model version activated', { model: name, version });
      ack(true);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.warn('cannot activate a stored version', { model: name, version, error: message });
      ack(false, message, isLoomError(err) ? err.code : 'LOOM_ERR_INTERNAL');
    }
  }

  /** The split of the local data for a hold-out share, made once per share (at most a few kept). */
  private split(dataset: LocalDataset, fraction: number): DatasetSplit {
    let split = this.splits.get(fraction);
    if (split) return split;
    this.splitSeed ??= datasetSeed(dataset);
    split = splitDataset(dataset, fraction, this.splitSeed);
    if (this.splits.size >= 4) this.splits.delete(this.splits.keys().next().value!);
    this.splits.set(fraction, split);
    return split;
  }

  private async runEvaluate(task: EvaluateBody, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const dataset = this.dataset;
    if (!dataset || !this.connection) return;
    const ref = `${task.model.name}@${task.model.version}`;
    this.log.info('evaluating', { evaluation: task.evaluationId, model: ref });
    try {
      const { holdout } = this.split(dataset, task.holdoutFraction);
      const result = await evaluateLocally({
        architecture: task.model.architecture,
        weights: decodeTensorBytes(task.weights),
        dataset: holdout,
        signal,
      });
      if (signal.aborted) return;
      // A diverged model can have an infinite loss; the protocol carries finite numbers only.
      const loss = Number.isFinite(result.loss) ? result.loss : Number.MAX_VALUE;
      this.connection.send('evaluate-result', {
        taskId: task.taskId,
        evaluationId: task.evaluationId,
        numExamples: result.numExamples,
        loss,
        accuracy: result.accuracy,
        confusion: result.confusion,
        evalMs: result.evalMs,
      });
      this.tasksCompleted++;
      this.log.info('evaluation sent', {
        evaluation: task.evaluationId,
        model: ref,
        examples: result.numExamples,
        loss: result.loss,
        accuracy: result.accuracy,
        ms: result.evalMs,
      });
    } catch (err) {
      if (signal.aborted) return;
      const { code, message } = this.sendTaskError(task.taskId, err);
      this.log.warn('evaluation failed', { evaluation: task.evaluationId, model: ref, code, message });
    }
  }

  private async runDeploy(body: DeployBody): Promise<void> {
    const { name, version } = body.model;
    const ack = (ok: boolean, error?: string, code?: string): void => {
      try {
        this.connection?.send('deploy-ack', {
          name,
          version,
          ok,
          ...(error ? { error } : {}),
          ...(code ? { code } : {}),
        });
      } catch {
        // Disconnected: the coordinator re-sends on the next hello.
      }
    };
    try {
      if (!this.identity) throw new LoomError('LOOM_ERR_INVALID_CONFIG', 'agent has no identity');
      // The signature first; then every chunk of the weights (those kept from a cut transfer
      // too) against the list it covers, then the whole; only then is anything decoded or stored.
      const manifest = verifyDeployment(
        body.model,
        body.sha256,
        body.signature,
        body.signerCertificate,
        this.identity.caPem,
        new Date(),
        body.manifest,
      );
      if (manifest) checkAgainstManifest(manifest, body.weights);
      else if (sha256Hex(body.weights) !== body.sha256) {
        throw new LoomError('LOOM_ERR_INTEGRITY', `weights of ${name}@${version} do not match their SHA-256`);
      }
      const weights = decodeTensorBytes(body.weights);
      await this.store?.put({ name, version, architecture: body.model.architecture, weights });
      await this.server?.load(name, version);
      this.log.info('model version deployed', { model: name, version });
      ack(true);
      await this.pruneStore(name);
      await this.refreshStored();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error('deployment failed', { model: name, version, error: message });
      ack(false, message, isLoomError(err) ? err.code : 'LOOM_ERR_INTERNAL');
    }
  }
}

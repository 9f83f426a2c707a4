// Creates, runs, cancels and resumes federated training jobs: one round after another through
// the round engine, with a registry version per round (or every N rounds) and the job record
// saved after every round, so a restarted coordinator continues where it stopped.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { ModelRef } from '../../shared/protocol/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';
import { createAggregationEngine, type EngineName } from '../aggregation/index.ts';
import type { ModelRegistry } from '../registry/index.ts';
import { type AgentPool, runRound } from '../rounds/index.ts';
import type { JobConfig, JobRecord, RoundRecord } from './job-record.ts';
import type { JobStore } from './job-store.ts';

export interface JobServiceOptions {
  store: JobStore;
  registry: ModelRegistry;
  pool: AgentPool;
  /** Aggregation engine for jobs that do not name one (default `typed-array`). */
  defaultEngine?: EngineName;
  log: Logger;
}

export interface JobEvents {
  round: [JobRecord, RoundRecord];
  finished: [JobRecord];
}

function newJobId(): string {
  return `job-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Agents to ask in a round: clientsPerRound, else fraction of those online, never below minClients. */
export function targetClients(config: JobConfig, online: number): number {
  if (config.clientsPerRound !== undefined) return config.clientsPerRound;
  const share = config.fraction === undefined ? online : Math.ceil(config.fraction * online);
  return Math.max(config.minClients, share);
}

export class JobService extends EventEmitter<JobEvents> {
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly opts: JobServiceOptions) {
    super();
    this.log = opts.log;
  }

  /** Validates against the registry, stores the job and starts it. */
  async create(config: JobConfig, createdBy: string): Promise<JobRecord> {
    const model = await this.opts.registry.getModel(config.model);
    const baseVersion = config.baseVersion ?? model.latestVersion;
    await this.opts.registry.getVersion(model.name, baseVersion);
    const job: JobRecord = {
      id: newJobId(),
      config,
      state: 'pending',
      createdAt: new Date().toISOString(),
      createdBy,
      currentRound: 0,
      baseVersion,
      rounds: [],
    };
    await this.opts.store.put(job);
    this.log.info('job created', { job: job.id, model: model.name, rounds: config.rounds, by: createdBy });
    this.start(job);
    return job;
  }

  get(id: string): Promise<JobRecord> {
    return this.opts.store.get(id);
  }

  list(): Promise<JobRecord[]> {
    return this.opts.store.list();
  }

  /** Stops a pending or running job; LOOM_ERR_CONFLICT if it already ended. */
  async cancel(id: string): Promise<JobRecord> {
    const job = await this.opts.store.get(id);
    const run = this.running.get(id);
    if (!run) throw new LoomError('LOOM_ERR_CONFLICT', `job ${id} is ${job.state} and cannot be cancelled`);
    run.controller.abort();
    await run.done;
    return this.opts.store.get(id);
  }

  /** Continues jobs a previous coordinator process left pending or running. */
  async resumeUnfinished(): Promise<string[]> {
    const jobs = await this.opts.store.list();
    const resumed: string[] = [];
    for (const job of jobs) {
      if (job.state !== 'pending' && job.state !== 'running') continue;
      await this.adoptOrphanVersion(job);
      // Rounds after the last registered version are redone: their weights were never stored.
      const lastSaved = job.rounds.findLastIndex((r) => r.version !== undefined);
      job.rounds = job.rounds.slice(0, lastSaved + 1);
      job.currentRound = job.rounds.at(-1)?.round ?? 0;
      this.log.info('resuming job', { job: job.id, fromRound: job.currentRound + 1 });
      this.start(job);
      resumed.push(job.id);
    }
    return resumed;
  }

  /**
   * The registry write of a round and the job record that names it are two stores; a stop between
   * them leaves a version the job does not know. Such a version is the round's result: adopt it
   * rather than train the round again.
   */
  private async adoptOrphanVersion(job: JobRecord): Promise<void> {
    const known = job.latestVersion ?? job.baseVersion;
    const orphan = (await this.opts.registry.listVersions(job.config.model))
      .filter((v) => v.jobId === job.id && v.round !== null && v.version > known)
      .at(-1);
    if (!orphan || orphan.round === null) return;
    job.rounds = job.rounds.filter((r) => r.round < (orphan.round ?? 0));
    job.rounds.push({
      round: orphan.round,
      startedAt: orphan.createdAt,
      durationMs: 0,
      trainMs: 0,
      sampled: orphan.agents,
      participants: orphan.agents.map((agentId) => ({
        agentId,
        numExamples: orphan.exampleCounts[agentId] ?? 0,
        metrics: {},
        trainMs: 0,
        roundTripMs: 0,
      })),
      failures: [],
      numExamples: orphan.numExamples,
      metrics: orphan.metrics,
      version: orphan.version,
    });
    job.latestVersion = orphan.version;
    this.log.info('adopted a version written just before a stop', { job: job.id, version: orphan.version });
  }

  /** Waits for a job's runner to finish (tests, shutdown). */
  async waitFor(id: string): Promise<JobRecord> {
    await this.running.get(id)?.done;
    return this.opts.store.get(id);
  }

  /** Stops all runners without marking jobs cancelled, so the next start resumes them. */
  async close(): Promise<void> {
    this.closed = true;
    const runs = [...this.running.values()];
    for (const r of runs) r.controller.abort();
    await Promise.all(runs.map((r) => r.done));
  }

  private start(job: JobRecord): void {
    const controller = new AbortController();
    const done = this.run(job, controller.signal)
      .catch((err: unknown) => {
        // Only a failing store gets here (the final save); the job stays resumable.
        this.log.error('job runner stopped', {
          job: job.id,
          error: err instanceof Error ? err.message : String(err),
        });
      })
      .finally(() => this.running.delete(job.id));
    this.running.set(job.id, { controller, done });
  }

  private async run(job: JobRecord, signal: AbortSignal): Promise<void> {
    const { registry, pool } = this.opts;
    const config = job.config;
    const started = Date.now() - (job.durationMs ?? 0);
    try {
      const model = await registry.getModel(config.model);
      let version = job.latestVersion ?? job.baseVersion;
      let global: WeightTensor[] = await registry.getWeights(model.name, version);
      const engine = createAggregationEngine(config.engine ?? this.opts.defaultEngine ?? 'typed-array');
      job.state = 'running';
      job.startedAt ??= new Date().toISOString();
      await this.opts.store.put(job);

      for (let round = job.currentRound + 1; round <= config.rounds; round++) {
        const ref: ModelRef = { name: model.name, version, architecture: model.architecture };
        job.currentRound = round;
        await this.opts.store.put(job);
        const outcome = await runRound(
          pool,
          {
            jobId: job.id,
            round,
            model: ref,
            hyper: { epochs: config.epochs, batchSize: config.batchSize, learningRate: config.learningRate },
            global,
            targetClients: targetClients(config, pool.onlineAgentIds().length),
            minClients: config.minClients,
            timeoutMs: config.roundTimeoutSec * 1000,
            engine,
            serverLearningRate: config.serverLearningRate,
            ...(config.maxUpdateNorm ? { maxUpdateNorm: config.maxUpdateNorm } : {}),
          },
          signal,
          this.log,
        );
        global = outcome.weights;
        const record: RoundRecord = {
          round,
          startedAt: outcome.startedAt,
          durationMs: outcome.durationMs,
          trainMs: outcome.trainMs,
          sampled: outcome.sampled,
          participants: outcome.participants,
          failures: outcome.failures,
          numExamples: outcome.numExamples,
          metrics: outcome.metrics,
        };
        if (round % config.versionEvery === 0 || round === config.rounds) {
          const saved = await registry.addVersion({
            model: model.name,
            parentVersion: version,
            jobId: job.id,
            round,
            agents: outcome.participants.map((p) => p.agentId),
            exampleCounts: Object.fromEntries(outcome.participants.map((p) => [p.agentId, p.numExamples])),
            metrics: outcome.metrics,
            weights: global,
          });
          version = saved.version;
          record.version = version;
          job.latestVersion = version;
        }
        job.rounds.push(record);
        job.durationMs = Date.now() - started;
        await this.opts.store.put(job);
        this.log.info('round complete', {
          job: job.id,
          round,
          participants: record.participants.length,
          failures: record.failures.length,
          loss: record.metrics.loss,
          accuracy: record.metrics.accuracy,
          version: record.version,
          ms: record.durationMs,
        });
        this.emit('round', job, record);
      }
      job.state = 'completed';
    } catch (err) {
      if (isLoomError(err, 'LOOM_ERR_JOB_CANCELLED')) {
        if (this.closed) return; // shutdown: leave it running in the store so the next start resumes it
        job.state = 'cancelled';
        job.error = { code: err.code, message: err.message };
      } else {
        job.state = 'failed';
        job.error = isLoomError(err)
          ? { code: err.code, message: err.message }
          : { code: 'LOOM_ERR_INTERNAL', message: 'internal error; see the coordinator log' };
        if (!isLoomError(err))
          this.log.error('job crashed', { job: job.id, error: (err as Error).stack ?? String(err) });
      }
    }
    job.finishedAt = new Date().toISOString();
    job.durationMs = Date.now() - started;
    await this.opts.store.put(job);
    this.log.info(`job ${job.state}`, { job: job.id, version: job.latestVersion, error: job.error?.message });
    this.emit('finished', job);
  }
}

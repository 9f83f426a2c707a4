// Starts federated evaluations of registry versions, runs each in the background through the
// round engine, and keeps their records: running when started, then completed, failed or
// cancelled, each state one durable batch. An evaluation a stopped process left running is
// marked failed at the next start, saying why.
import { randomBytes } from 'node:crypto';
import { LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { type AgentDirectory, selectByLabels } from '../directory/index.ts';
import { holdoutFractionOf, type ModelRegistry } from '../registry/index.ts';
import { type AgentPool, EvaluationRound } from '../rounds/index.ts';
import type { EvaluationRecord, EvaluationRequest } from './evaluation-record.ts';
import type { EvaluationStore } from './evaluation-store.ts';

export interface EvaluationServiceOptions {
  store: EvaluationStore;
  registry: ModelRegistry;
  pool: AgentPool;
  /** Enrolled agents, for requests that select agents by labels (refused without one). */
  directory?: Pick<AgentDirectory, 'list'>;
  log: Logger;
}

/** Who asked for an evaluation, and on behalf of which job. */
export interface EvaluationOrigin {
  actor: string;
  jobId?: string;
  round?: number;
  /** Agents never to ask (a job's excluded agents). */
  excluded?: readonly string[];
  /** Aborting cancels the evaluation (a job cancelled while it evaluates). */
  signal?: AbortSignal;
}

function newEvaluationId(): string {
  return `eval-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export class EvaluationService {
  private readonly running = new Map<
    string,
    { controller: AbortController; done: Promise<EvaluationRecord> }
  >();
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly opts: EvaluationServiceOptions) {
    this.log = opts.log;
  }

  /**
   * Stores a running evaluation of `model` version `version` (audited as `evaluation.start` by
   * `origin.actor`) and runs it in the background; resolves with the record as first stored.
   * LOOM_ERR_NOT_FOUND for an unknown model or version.
   */
  async start(
    model: string,
    version: number,
    request: EvaluationRequest,
    origin: EvaluationOrigin,
  ): Promise<EvaluationRecord> {
    return (await this.launch(model, version, request, origin)).record;
  }

  /** Like `start`, and resolves once the evaluation has ended, with its final record. */
  async evaluate(
    model: string,
    version: number,
    request: EvaluationRequest,
    origin: EvaluationOrigin,
  ): Promise<EvaluationRecord> {
    return (await this.launch(model, version, request, origin)).done;
  }

  get(model: string, id: string): Promise<EvaluationRecord> {
    return this.opts.store.get(model, id);
  }

  /** The model's evaluations, newest first (LOOM_ERR_NOT_FOUND for an unknown model). */
  async list(model: string): Promise<EvaluationRecord[]> {
    await this.opts.registry.getModel(model);
    return this.opts.store.list(model);
  }

  /** The newest completed evaluation of the version, if any. */
  async latestCompleted(model: string, version: number): Promise<EvaluationRecord | undefined> {
    return (await this.opts.store.list(model)).find((e) => e.version === version && e.state === 'completed');
  }

  /** Marks every evaluation a previous process left running as failed, with the reason. */
  async failUnfinished(): Promise<string[]> {
    const failed: string[] = [];
    for (const record of await this.opts.store.running()) {
      if (this.running.has(record.id)) continue;
      await this.opts.store.put({
        ...record,
        state: 'failed',
        finishedAt: new Date().toISOString(),
        error: {
          code: 'LOOM_ERR_TASK_FAILED',
          message: 'the coordinator stopped while the evaluation ran; start a new one',
        },
      });
      this.log.warn('evaluation left running by the previous process marked failed', {
        evaluation: record.id,
        model: record.model,
      });
      failed.push(record.id);
    }
    return failed;
  }

  /** Stops every running evaluation without recording an end: the next start marks them failed. */
  async close(): Promise<void> {
    this.closed = true;
    const runs = [...this.running.values()];
    for (const r of runs) r.controller.abort();
    await Promise.all(runs.map((r) => r.done.catch(() => undefined)));
  }

  private async launch(
    modelName: string,
    version: number,
    request: EvaluationRequest,
    origin: EvaluationOrigin,
  ): Promise<{ record: EvaluationRecord; done: Promise<EvaluationRecord> }> {
    if (this.closed) throw new LoomError('LOOM_ERR_CONFLICT', 'the coordinator is shutting down');
    const model = await this.opts.registry.getModel(modelName);
    await this.opts.registry.getVersion(modelName, version);
    if (holdoutFractionOf(model) === 0) {
      throw new LoomError(
        'LOOM_ERR_CONFLICT',
        `model ${modelName} holds out no data (holdoutFraction 0), so there is nothing to evaluate it on`,
        { details: { model: modelName } },
      );
    }
    const selected = request.labels ? await this.selectByLabels(request.labels) : undefined;
    const record: EvaluationRecord = {
      id: newEvaluationId(),
      model: modelName,
      version,
      state: 'running',
      request,
      holdoutFraction: holdoutFractionOf(model),
      createdAt: new Date().toISOString(),
      createdBy: origin.actor,
      ...(origin.jobId === undefined ? {} : { jobId: origin.jobId }),
      ...(origin.round === undefined ? {} : { round: origin.round }),
      asked: [],
      results: [],
      failures: [],
    };
    await this.opts.store.put(record, {
      audit: {
        actor: origin.actor,
        action: 'evaluation.start',
        target: `${modelName}@${version}`,
        details: { evaluation: record.id, ...request, ...(origin.jobId ? { job: origin.jobId } : {}) },
      },
    });
    this.log.info('evaluation started', { evaluation: record.id, model: modelName, version });
    const controller = new AbortController();
    origin.signal?.addEventListener('abort', () => controller.abort(), { once: true });
    if (origin.signal?.aborted) controller.abort();
    const done = this.run(
      record,
      model.classes,
      model.architecture,
      { ...origin, ...(selected ? { selected } : {}) },
      controller.signal,
    ).finally(() => this.running.delete(record.id));
    this.running.set(record.id, { controller, done });
    return { record: { ...record }, done };
  }

  /**
   * The ids of the enrolled agents that are not revoked and carry every label of `labels`;
   * LOOM_ERR_NO_TARGETS when there is none.
   */
  private async selectByLabels(labels: Record<string, string>): Promise<ReadonlySet<string>> {
    const agents = this.opts.directory ? selectByLabels(await this.opts.directory.list(), labels) : [];
    if (agents.length === 0) {
      throw new LoomError(
        'LOOM_ERR_NO_TARGETS',
        `labels: no enrolled agent that is not revoked carries ${Object.entries(labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')}`,
        {
          details: { field: 'labels' },
        },
      );
    }
    return new Set(agents.map((a) => a.id));
  }

  private async run(
    record: EvaluationRecord,
    classes: number,
    architecture: ModelArchitecture,
    origin: EvaluationOrigin & { selected?: ReadonlySet<string> },
    signal: AbortSignal,
  ): Promise<EvaluationRecord> {
    let final: EvaluationRecord;
    try {
      const weights = await this.opts.registry.getWeights(record.model, record.version);
      const round = new EvaluationRound(
        this.opts.pool,
        {
          evaluationId: record.id,
          model: { name: record.model, version: record.version, architecture },
          classes,
          weights,
          holdoutFraction: record.holdoutFraction,
          ...(record.request.agents ? { agents: record.request.agents } : {}),
          ...(origin.excluded ? { excluded: new Set(origin.excluded) } : {}),
          ...(origin.selected ? { onlyAgents: origin.selected } : {}),
          minClients: record.request.minClients,
          timeoutMs: record.request.timeoutSec * 1000,
        },
        this.log,
      );
      const result = await round.run(signal);
      if (result.state === 'cancelled' && this.closed) return { ...record };
      final = {
        ...record,
        state: result.state,
        finishedAt: new Date().toISOString(),
        durationMs: result.durationMs,
        asked: result.asked,
        results: result.results,
        failures: result.failures,
        ...(result.aggregate ? { aggregate: result.aggregate } : {}),
        ...(result.error ? { error: result.error } : {}),
      };
    } catch (err) {
      final = {
        ...record,
        state: 'failed',
        finishedAt: new Date().toISOString(),
        error:
          err instanceof LoomError
            ? { code: err.code, message: err.message }
            : { code: 'LOOM_ERR_INTERNAL', message: 'internal error; see the coordinator log' },
      };
      if (!(err instanceof LoomError))
        this.log.error('evaluation crashed', { evaluation: record.id, error: String(err) });
    }
    try {
      await this.opts.store.put(final);
    } catch (err) {
      // The result is still returned to a job waiting for it; the record stays running and the
      // next start marks it failed.
      this.log.error('could not save the end of an evaluation', {
        evaluation: record.id,
        error: String(err),
      });
    }
    this.log.info('evaluation ended', {
      evaluation: record.id,
      model: record.model,
      version: record.version,
      state: final.state,
      sites: final.results.length,
      failures: final.failures.length,
      accuracy: final.aggregate?.accuracy,
      loss: final.aggregate?.loss,
      ms: final.durationMs,
    });
    return final;
  }
}

// One federated round as a small state machine: collecting (tasks out, updates checked and folded
// as they arrive), then completed, failed or cancelled. It samples agents, replaces those that
// drop, bounds every agent's weight and update (see contribution.ts), and reports each step as an
// event. Knows nothing of sockets (AgentPool) or of the job store.
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { ModelRef, TrainHyperParameters } from '../../shared/protocol/index.ts';
import { encodeTensorBytes } from '../../shared/protocol/index.ts';
import { specsOf, type WeightTensor } from '../../shared/tensors/index.ts';
import { type AggregationEngine, type Aggregator, applyAverageDelta } from '../aggregation/index.ts';
import type { AgentClaims, AgentPool, TrainOutcome } from './agent-pool.ts';
import {
  clipNormFrom,
  medianMetrics,
  ROBUSTNESS_DEFAULTS,
  type RobustnessSettings,
  weightCap,
} from './contribution.ts';
import { errorOf } from './task-failure.ts';

export interface RoundPlan {
  jobId: string;
  round: number;
  model: ModelRef;
  hyper: TrainHyperParameters;
  global: WeightTensor[];
  /** How many successful updates the round aims for. */
  targetClients: number;
  /** Fewest successful updates that still make a valid round. */
  minClients: number;
  timeoutMs: number;
  engine: AggregationEngine;
  /** Optional L2 bound on each update: a larger one is refused as that agent's failure. */
  maxUpdateNorm?: number;
  /** FedAvg server learning rate (default 1: plain FedAvg). */
  serverLearningRate?: number;
  /** How often one agent may be tried in a round after it disconnected (default 2). */
  maxAttemptsPerAgent?: number;
  /** Weight cap and clipping (default ROBUSTNESS_DEFAULTS). */
  robustness?: Partial<RobustnessSettings>;
  /** Agents never to sample (they declined the job for good, or the operator excluded them). */
  excluded?: ReadonlySet<string>;
  /** The only agents that may be sampled (those a job's labels select); absent: any online agent. */
  onlyAgents?: ReadonlySet<string>;
  /** Source of randomness for sampling (default Math.random). */
  random?: () => number;
  /** Share of each site's data it holds out and never trains on (default: the agent's, 0.1). */
  holdoutFraction?: number;
}

export interface RoundParticipant {
  agentId: string;
  /** Examples the agent says it trained on. */
  numExamples: number;
  /** Its weight in the average: numExamples, capped (see RobustnessSettings.weightCapRatio). */
  weight: number;
  /** L2 norm of the update it sent. */
  norm: number;
  /** Factor its update was scaled by: 1, or less when it was clipped. */
  scale: number;
  /** Metrics the agent reported for its local training (self-reported). */
  metrics: Record<string, number>;
  trainMs: number;
  /** From sending the task to receiving its result, as the coordinator saw it. */
  roundTripMs: number;
  /** Software and dataset fingerprint the agent claimed on the connection its result came over. */
  claims?: AgentClaims;
}

export interface RoundFailure {
  agentId: string;
  code: string;
  reason: string;
  /** The agent said asking again cannot help: it is not sampled again for the job. */
  permanent?: boolean;
}

export type RoundState = 'collecting' | 'completed' | 'failed' | 'cancelled';

/** A round's end. `weights` is set only for a completed round. */
export interface RoundResult {
  round: number;
  state: Exclude<RoundState, 'collecting'>;
  error?: { code: string; message: string };
  targetClients: number;
  minClients: number;
  sampled: string[];
  participants: RoundParticipant[];
  failures: RoundFailure[];
  /** Sum of the participants' weights. */
  numExamples: number;
  /** Per metric, the median of what the participants reported for their local training. */
  trainMetrics: Record<string, number>;
  /** The largest weight one agent could have, when capped. */
  weightCap?: number;
  /** The norm updates were clipped to, once the round set it. */
  clipNorm?: number;
  weights?: WeightTensor[];
  startedAt: string;
  durationMs: number;
  /** Longest agent-reported training time: the part of the round spent training. */
  trainMs: number;
}

/** A round in progress, as operators see it. */
export interface RoundProgress {
  round: number;
  state: RoundState;
  startedAt: string;
  deadline: string;
  targetClients: number;
  minClients: number;
  sampled: string[];
  inFlight: string[];
  reported: string[];
  failures: RoundFailure[];
}

/** What a round reports as it goes, for progress views and event streams. */
export type RoundEvent =
  | { type: 'round-started'; round: number; targetClients: number; minClients: number; deadline: string }
  | { type: 'task-sent'; round: number; agentId: string; attempt: number }
  | {
      type: 'update-received';
      round: number;
      agentId: string;
      numExamples: number;
      weight: number;
      norm: number;
    }
  | { type: 'update-clipped'; round: number; agentId: string; norm: number; clipNorm: number }
  | { type: 'agent-failed'; round: number; agentId: string; code: string; reason: string; permanent: boolean }
  | {
      type: 'round-ended';
      round: number;
      state: RoundResult['state'];
      participants: number;
      failures: number;
    };

/** A result held until the round's clip norm is known (the first `clipQuorum` updates). */
interface Held {
  participant: RoundParticipant;
  update: WeightTensor[];
}

/** Longest stretch of task sends before the round yields to the event loop. */
const SEND_SLICE_MS = 10;

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * One round. `run` sends tasks and resolves once the round is completed (`targetClients` updates,
 * or `minClients` by the deadline or when nobody is left to ask), failed (no quorum by the
 * deadline, or the aggregate unusable) or cancelled (the signal aborted). It never rejects and
 * never hangs past the deadline.
 */
export class Round {
  private state: RoundState = 'collecting';
  private readonly started = Date.now();
  private readonly settings: RobustnessSettings;
  private readonly maxAttempts: number;
  private readonly random: () => number;
  private aggregator?: Aggregator;
  private weightBytes?: Buffer;
  private readonly sampled: string[] = [];
  private readonly sampledSet = new Set<string>();
  /** Tasks counted as in flight and not sent yet (see flushSends). */
  private readonly sendQueue: { agentId: string; taskId: string }[] = [];
  private flushing = false;
  private readonly attempts = new Map<string, number>();
  private readonly inFlight = new Map<string, { taskId: string; sentAt: number }>();
  private readonly participants: RoundParticipant[] = [];
  /** Agents whose update counts in this round (the ids of `participants`). */
  private readonly reported = new Set<string>();
  private readonly failures: RoundFailure[] = [];
  private readonly held: Held[] = [];
  private cap?: number;
  private clipNorm?: number;
  private clipDecided = false;
  private taskSeq = 0;
  private settle?: (result: RoundResult) => void;
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;

  constructor(
    private readonly pool: AgentPool,
    private readonly plan: RoundPlan,
    private readonly log: Logger,
    private readonly onEvent: (event: RoundEvent) => void = () => {},
  ) {
    this.settings = { ...ROBUSTNESS_DEFAULTS, ...plan.robustness };
    this.maxAttempts = plan.maxAttemptsPerAgent ?? 2;
    this.random = plan.random ?? Math.random;
  }

  /** Where the round stands now. */
  progress(): RoundProgress {
    return {
      round: this.plan.round,
      state: this.state,
      startedAt: new Date(this.started).toISOString(),
      deadline: new Date(this.started + this.plan.timeoutMs).toISOString(),
      targetClients: this.plan.targetClients,
      minClients: this.plan.minClients,
      sampled: [...this.sampled],
      inFlight: [...this.inFlight.keys()],
      reported: this.participants.map((p) => p.agentId),
      failures: this.failures.map((f) => ({ ...f })),
    };
  }

  run(signal: AbortSignal): Promise<RoundResult> {
    if (this.settle) throw new TypeError('a round runs once');
    return new Promise<RoundResult>((resolve) => {
      this.settle = resolve;
      if (signal.aborted) {
        this.end('cancelled', new LoomError('LOOM_ERR_JOB_CANCELLED', 'the job was cancelled'));
        return;
      }
      const onAbort = (): void =>
        this.end('cancelled', new LoomError('LOOM_ERR_JOB_CANCELLED', 'the job was cancelled'));
      signal.addEventListener('abort', onAbort, { once: true });
      const unsubscribe = this.pool.onAgentOnline(() => this.dispatch());
      this.unsubscribe = () => {
        unsubscribe();
        signal.removeEventListener('abort', onAbort);
      };
      try {
        // Encoded once; every agent's task shares these bytes.
        this.weightBytes = encodeTensorBytes(this.plan.global);
        this.aggregator = this.plan.engine.createAggregator(specsOf(this.plan.global), {
          ...(this.plan.maxUpdateNorm ? { maxNorm: this.plan.maxUpdateNorm } : {}),
        });
      } catch (err) {
        this.end('failed', isLoomError(err) ? err : new LoomError('LOOM_ERR_INTERNAL', errorOf(err).reason));
        return;
      }
      this.timer = setTimeout(() => this.onDeadline(), this.plan.timeoutMs);
      this.onEvent({
        type: 'round-started',
        round: this.plan.round,
        targetClients: this.plan.targetClients,
        minClients: this.plan.minClients,
        deadline: new Date(this.started + this.plan.timeoutMs).toISOString(),
      });
      this.dispatch();
    });
  }

  // --- sending -------------------------------------------------------------------------------

  private eligible(agentId: string): boolean {
    return (
      !this.plan.excluded?.has(agentId) &&
      (this.plan.onlyAgents === undefined || this.plan.onlyAgents.has(agentId)) &&
      !this.reported.has(agentId) &&
      !this.inFlight.has(agentId) &&
      (this.attempts.get(agentId) ?? 0) < this.maxAttempts
    );
  }

  private dispatch(): void {
    if (this.state !== 'collecting') return;
    const wanted = this.plan.targetClients - this.participants.length - this.inFlight.size;
    if (wanted <= 0) return;
    const candidates = shuffle(
      this.pool.onlineAgentIds().filter((id) => this.eligible(id)),
      this.random,
    ).slice(0, wanted);
    for (const agentId of candidates) this.reserve(agentId);
    this.flushSends();
  }

  /** Counts a task as in flight at once (so no agent is asked twice), to be sent by flushSends. */
  private reserve(agentId: string): void {
    const taskId = `${this.plan.jobId}.r${this.plan.round}.t${++this.taskSeq}`;
    this.attempts.set(agentId, (this.attempts.get(agentId) ?? 0) + 1);
    if (!this.sampledSet.has(agentId)) {
      this.sampledSet.add(agentId);
      this.sampled.push(agentId);
    }
    this.inFlight.set(agentId, { taskId, sentAt: Date.now() });
    this.sendQueue.push({ agentId, taskId });
  }

  /**
   * Sends queued tasks for at most SEND_SLICE_MS, then yields to the event loop and goes on: each
   * send encrypts the weights for that agent's TLS connection, and a thousand of them in one go
   * would hold heartbeats and results back for seconds.
   */
  private flushSends(): void {
    if (this.flushing) return;
    const started = performance.now();
    while (this.sendQueue.length > 0 && this.state === 'collecting') {
      const next = this.sendQueue.shift()!;
      if (this.inFlight.get(next.agentId)?.taskId === next.taskId) this.send(next.agentId, next.taskId);
      if (performance.now() - started > SEND_SLICE_MS && this.sendQueue.length > 0) {
        this.flushing = true;
        setImmediate(() => {
          this.flushing = false;
          this.flushSends();
        });
        return;
      }
    }
  }

  private send(agentId: string, taskId: string): void {
    const sentAt = Date.now();
    this.inFlight.set(agentId, { taskId, sentAt });
    this.onEvent({
      type: 'task-sent',
      round: this.plan.round,
      agentId,
      attempt: this.attempts.get(agentId) ?? 1,
    });
    this.pool
      .runTrainTask(agentId, {
        taskId,
        jobId: this.plan.jobId,
        round: this.plan.round,
        model: this.plan.model,
        hyper: this.plan.hyper,
        weights: this.weightBytes!,
        ...(this.plan.holdoutFraction === undefined ? {} : { holdoutFraction: this.plan.holdoutFraction }),
      })
      .then(
        (outcome) => this.onResult(agentId, taskId, sentAt, outcome),
        (err: unknown) => this.onTaskFailure(agentId, taskId, err),
      );
  }

  // --- receiving -----------------------------------------------------------------------------

  /**
   * The weight cap is fixed by the first result, from what every agent sampled so far declared,
   * so all participants of a round are weighed against the same cap.
   */
  private capOnce(): number {
    this.cap ??= weightCap(
      this.sampled.map((id) => this.pool.datasetOf(id)?.examples ?? Number.NaN),
      this.settings.weightCapRatio,
    );
    return this.cap;
  }

  private onResult(agentId: string, taskId: string, sentAt: number, outcome: TrainOutcome): void {
    if (this.state !== 'collecting' || this.inFlight.get(agentId)?.taskId !== taskId) return;
    this.inFlight.delete(agentId);
    try {
      const declared = this.pool.datasetOf(agentId)?.examples;
      if (outcome.numExamples <= 0) {
        throw new LoomError('LOOM_ERR_UPDATE_REJECTED', 'update reports no training examples');
      }
      if (declared !== undefined && outcome.numExamples > declared) {
        throw new LoomError(
          'LOOM_ERR_UPDATE_REJECTED',
          `update claims ${outcome.numExamples} examples; the agent declared ${declared} when it connected`,
          { details: { reason: 'examples' } },
        );
      }
      const claims = this.pool.claimsOf?.(agentId);
      const participant: RoundParticipant = {
        agentId,
        numExamples: outcome.numExamples,
        weight: Math.min(outcome.numExamples, this.capOnce()),
        norm: 0,
        scale: 1,
        metrics: outcome.metrics,
        trainMs: outcome.trainMs,
        roundTripMs: Date.now() - sentAt,
        ...(claims ? { claims } : {}),
      };
      if (this.clipDecided || this.settings.clipFactor <= 0) {
        this.fold(participant, outcome.update);
      } else {
        // Held (validated, not folded) until the round's clip norm is known.
        participant.norm = this.aggregator!.measure(outcome.update);
        this.held.push({ participant, update: outcome.update });
        this.addParticipant(participant);
        if (this.held.length >= Math.min(this.settings.clipQuorum, this.plan.targetClients)) {
          this.releaseHeld();
        }
      }
    } catch (err) {
      // A rejected update does not earn the agent another try this round.
      this.attempts.set(agentId, this.maxAttempts);
      this.recordFailure(agentId, err);
    }
    this.progressed();
  }

  /** Folds one update with the round's cap and clip norm; records the participant on success. */
  private fold(participant: RoundParticipant, update: WeightTensor[]): void {
    const report = this.aggregator!.fold(
      update,
      participant.weight,
      this.clipNorm === undefined ? {} : { clipNorm: this.clipNorm },
    );
    participant.norm = report.norm;
    participant.scale = report.scale;
    if (!this.reported.has(participant.agentId)) this.addParticipant(participant);
    if (report.scale < 1 && this.clipNorm !== undefined) {
      this.onEvent({
        type: 'update-clipped',
        round: this.plan.round,
        agentId: participant.agentId,
        norm: report.norm,
        clipNorm: this.clipNorm,
      });
    }
  }

  private addParticipant(p: RoundParticipant): void {
    this.participants.push(p);
    this.reported.add(p.agentId);
    this.emitReceived(p);
  }

  private emitReceived(p: RoundParticipant): void {
    this.onEvent({
      type: 'update-received',
      round: this.plan.round,
      agentId: p.agentId,
      numExamples: p.numExamples,
      weight: p.weight,
      norm: p.norm,
    });
  }

  /** Sets the clip norm from the held updates and folds them; a failing one becomes a failure. */
  private releaseHeld(): void {
    if (this.clipDecided) return;
    this.clipDecided = true;
    this.clipNorm = clipNormFrom(
      this.held.map((h) => h.participant.norm),
      this.settings.clipFactor,
    );
    for (const { participant, update } of this.held.splice(0)) {
      try {
        this.fold(participant, update);
      } catch (err) {
        this.participants.splice(this.participants.indexOf(participant), 1);
        this.reported.delete(participant.agentId);
        this.attempts.set(participant.agentId, this.maxAttempts);
        this.recordFailure(participant.agentId, err);
      }
    }
  }

  private onTaskFailure(agentId: string, taskId: string, err: unknown): void {
    if (this.state !== 'collecting' || this.inFlight.get(agentId)?.taskId !== taskId) return;
    this.inFlight.delete(agentId);
    if (!isLoomError(err, 'LOOM_ERR_AGENT_DISCONNECTED')) this.attempts.set(agentId, this.maxAttempts);
    this.recordFailure(agentId, err);
    this.progressed();
  }

  private recordFailure(agentId: string, err: unknown): void {
    const { code, reason } = errorOf(err);
    const permanent = isLoomError(err) && err.details?.permanent === true;
    this.failures.push({ agentId, code, reason, ...(permanent ? { permanent } : {}) });
    this.log.warn('round task failed', {
      job: this.plan.jobId,
      round: this.plan.round,
      agent: agentId,
      code,
      reason,
    });
    this.onEvent({ type: 'agent-failed', round: this.plan.round, agentId, code, reason, permanent });
  }

  private progressed(): void {
    if (this.state !== 'collecting') return;
    if (this.participants.length >= this.plan.targetClients) {
      this.complete();
      return;
    }
    this.dispatch();
    // Nobody left to wait for: finalise now if quorum is met, else wait for agents to connect.
    if (this.inFlight.size === 0 && this.participants.length >= this.plan.minClients) this.complete();
  }

  private onDeadline(): void {
    if (this.state !== 'collecting') return;
    if (this.participants.length >= this.plan.minClients) {
      this.log.info('round deadline reached, finalising with the updates received', {
        job: this.plan.jobId,
        round: this.plan.round,
        updates: this.participants.length,
      });
      this.complete(true);
      return;
    }
    this.end(
      'failed',
      new LoomError(
        'LOOM_ERR_ROUND_QUORUM',
        `round ${this.plan.round} got ${this.participants.length} of the ${this.plan.minClients} updates it needs within ${Math.round(this.plan.timeoutMs / 1000)} s ` +
          `(${this.pool.onlineAgentIds().length} agents online, ${this.failures.length} failures)`,
      ),
    );
  }

  // --- ending --------------------------------------------------------------------------------

  private complete(atDeadline = false): void {
    this.releaseHeld();
    if (this.participants.length < this.plan.minClients) {
      // Held updates that failed to fold took the round below quorum: before the deadline it
      // goes on collecting (more agents may answer or connect); at the deadline it has failed.
      if (!atDeadline) {
        this.dispatch();
        return;
      }
      this.end(
        'failed',
        new LoomError(
          'LOOM_ERR_ROUND_QUORUM',
          `round ${this.plan.round} kept ${this.participants.length} of the ${this.plan.minClients} updates it needs`,
        ),
      );
      return;
    }
    let weights: WeightTensor[];
    try {
      const average = this.aggregator!.average();
      weights = applyAverageDelta(this.plan.global, average, this.plan.serverLearningRate ?? 1);
      // Every fold kept the sum finite, but the server step can still overflow float32 next to
      // huge global weights; such a model must never reach the registry or the agents.
      const bad = weights.find((w) => !w.data.every(Number.isFinite));
      if (bad) {
        throw new LoomError(
          'LOOM_ERR_UPDATE_REJECTED',
          `round ${this.plan.round}: the new weights of "${bad.name}" are not finite; no version written`,
        );
      }
    } catch (err) {
      this.end('failed', isLoomError(err) ? err : new LoomError('LOOM_ERR_INTERNAL', String(err)));
      return;
    }
    this.end('completed', undefined, weights);
  }

  private end(state: RoundResult['state'], error?: LoomError, weights?: WeightTensor[]): void {
    if (this.state !== 'collecting') return;
    this.state = state;
    clearTimeout(this.timer);
    this.unsubscribe?.();
    for (const [agentId, t] of this.inFlight) this.pool.cancelTask(agentId, t.taskId);
    this.inFlight.clear();
    this.sendQueue.length = 0;
    this.held.length = 0;
    this.aggregator?.dispose();
    this.aggregator = undefined;
    const result: RoundResult = {
      round: this.plan.round,
      state,
      ...(error ? { error: { code: error.code, message: error.message } } : {}),
      targetClients: this.plan.targetClients,
      minClients: this.plan.minClients,
      sampled: [...this.sampled],
      participants: this.participants,
      failures: this.failures,
      numExamples: this.participants.reduce((n, p) => n + p.weight, 0),
      trainMetrics: medianMetrics(this.participants.map((p) => p.metrics)),
      ...(this.cap !== undefined && Number.isFinite(this.cap) ? { weightCap: this.cap } : {}),
      ...(this.clipNorm === undefined ? {} : { clipNorm: this.clipNorm }),
      ...(weights ? { weights } : {}),
      startedAt: new Date(this.started).toISOString(),
      durationMs: Date.now() - this.started,
      trainMs: Math.max(0, ...this.participants.map((p) => p.trainMs)),
    };
    this.onEvent({
      type: 'round-ended',
      round: this.plan.round,
      state,
      participants: result.participants.length,
      failures: result.failures.length,
    });
    this.settle?.(result);
  }
}

/** Runs one round to its end (see `Round`). */
export function runRound(
  pool: AgentPool,
  plan: RoundPlan,
  signal: AbortSignal,
  log: Logger,
  onEvent?: (event: RoundEvent) => void,
): Promise<RoundResult> {
  return new Round(pool, plan, log, onEvent).run(signal);
}

// One federated evaluation as a small state machine: collecting (evaluate tasks out, reports
// checked as they arrive), then completed (enough sites reported), failed (too few by the
// deadline) or cancelled. Knows nothing of sockets (AgentPool) or of where results are stored.
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { ModelRef } from '../../shared/protocol/index.ts';
import { encodeTensorBytes, holdoutCount } from '../../shared/protocol/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';
import type { AgentPool, EvaluateOutcome } from './agent-pool.ts';
import { weightCap } from './contribution.ts';
import {
  aggregateEvaluations,
  type CheckedEvaluation,
  checkEvaluation,
  EVALUATION_WEIGHT_CAP_RATIO,
  type EvaluationAggregate,
  evaluationWeight,
} from './evaluation-check.ts';
import { errorOf } from './task-failure.ts';

export interface EvaluationPlan {
  evaluationId: string;
  /** The version to evaluate. */
  model: ModelRef;
  /** Classes of the model (the confusion matrix is classes × classes). */
  classes: number;
  weights: WeightTensor[];
  /** Share of each site's data held out (the model's `holdoutFraction`). */
  holdoutFraction: number;
  /**
   * Agents to ask; those offline at the start are asked when they connect, until the deadline.
   * Absent: every agent online at the start or connecting before the evaluation ends.
   */
  agents?: readonly string[];
  /** Agents never to ask (with `agents` absent). */
  excluded?: ReadonlySet<string>;
  /** With `agents` absent: the only agents that may be asked (those a label selector picks). */
  onlyAgents?: ReadonlySet<string>;
  /** Fewest checked reports that make the evaluation complete. */
  minClients: number;
  /**
   * A site weighs at most this many times the lower median of the hold-out sizes the asked sites'
   * declared datasets imply; 0 turns the cap off. Default EVALUATION_WEIGHT_CAP_RATIO (1.5).
   */
  weightCapRatio?: number;
  timeoutMs: number;
}

/** One site's checked report. */
export interface AgentEvaluation extends CheckedEvaluation {
  agentId: string;
  /** Its weight in the aggregate: numExamples, capped (see EvaluationPlan.weightCapRatio). */
  weight: number;
  evalMs: number;
  /** From sending the task to receiving its result, as the coordinator saw it. */
  roundTripMs: number;
}

export interface EvaluationFailure {
  agentId: string;
  code: string;
  reason: string;
}

export type EvaluationRoundState = 'collecting' | 'completed' | 'failed' | 'cancelled';

export interface EvaluationRoundResult {
  state: Exclude<EvaluationRoundState, 'collecting'>;
  error?: { code: string; message: string };
  minClients: number;
  asked: string[];
  results: AgentEvaluation[];
  failures: EvaluationFailure[];
  /** Example-weighted over `results`; absent when none passed. */
  aggregate?: EvaluationAggregate;
  startedAt: string;
  durationMs: number;
}

/**
 * A federated evaluation. `run` resolves once every agent asked has answered or failed (or, asking
 * whoever is online, once `minClients` reported and nobody is left in flight), or at the deadline.
 * It never rejects and never hangs past the deadline.
 */
export class EvaluationRound {
  private state: EvaluationRoundState = 'collecting';
  private readonly started = Date.now();
  private weightBytes?: Buffer;
  private readonly asked: string[] = [];
  /** Hold-out size each asked agent's declared dataset implies (the weight cap is set from them). */
  private readonly declaredHoldout: number[] = [];
  private readonly inFlight = new Map<string, { taskId: string; sentAt: number }>();
  private readonly results: AgentEvaluation[] = [];
  private readonly failures: EvaluationFailure[] = [];
  private taskSeq = 0;
  private settle?: (result: EvaluationRoundResult) => void;
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;

  constructor(
    private readonly pool: AgentPool,
    private readonly plan: EvaluationPlan,
    private readonly log: Logger,
  ) {}

  /** Agents asked so far, in flight, and reported: for progress views. */
  progress(): { asked: string[]; inFlight: string[]; reported: string[]; failed: string[] } {
    return {
      asked: [...this.asked],
      inFlight: [...this.inFlight.keys()],
      reported: this.results.map((r) => r.agentId),
      failed: this.failures.map((f) => f.agentId),
    };
  }

  run(signal: AbortSignal): Promise<EvaluationRoundResult> {
    if (this.settle) throw new TypeError('an evaluation runs once');
    return new Promise<EvaluationRoundResult>((resolve) => {
      this.settle = resolve;
      const cancel = (): void =>
        this.end('cancelled', new LoomError('LOOM_ERR_JOB_CANCELLED', 'the evaluation was cancelled'));
      if (signal.aborted) {
        cancel();
        return;
      }
      signal.addEventListener('abort', cancel, { once: true });
      const unsubscribe = this.pool.onAgentOnline((id) => {
        this.ask(id);
        this.progressed();
      });
      this.unsubscribe = () => {
        unsubscribe();
        signal.removeEventListener('abort', cancel);
      };
      try {
        this.weightBytes = encodeTensorBytes(this.plan.weights);
      } catch (err) {
        this.end('failed', isLoomError(err) ? err : new LoomError('LOOM_ERR_INTERNAL', errorOf(err).reason));
        return;
      }
      this.timer = setTimeout(() => this.onDeadline(), this.plan.timeoutMs);
      for (const id of this.pool.onlineAgentIds()) this.ask(id);
      this.progressed();
    });
  }

  private wanted(agentId: string): boolean {
    if (this.plan.agents) return this.plan.agents.includes(agentId);
    if (this.plan.onlyAgents && !this.plan.onlyAgents.has(agentId)) return false;
    return !this.plan.excluded?.has(agentId);
  }

  /** Asks an agent once per evaluation: a second connection of one agent is not asked again. */
  private ask(agentId: string): void {
    if (this.state !== 'collecting' || !this.wanted(agentId) || this.asked.includes(agentId)) return;
    this.asked.push(agentId);
    const declared = this.pool.datasetOf(agentId)?.examples;
    if (declared !== undefined) this.declaredHoldout.push(holdoutCount(declared, this.plan.holdoutFraction));
    const taskId = `${this.plan.evaluationId}.t${++this.taskSeq}`;
    const sentAt = Date.now();
    this.inFlight.set(agentId, { taskId, sentAt });
    this.pool
      .runEvaluateTask(agentId, {
        taskId,
        evaluationId: this.plan.evaluationId,
        model: this.plan.model,
        weights: this.weightBytes!,
        holdoutFraction: this.plan.holdoutFraction,
      })
      .then(
        (outcome) => this.onResult(agentId, taskId, sentAt, outcome),
        (err: unknown) => this.onFailure(agentId, taskId, err),
      );
  }

  private onResult(agentId: string, taskId: string, sentAt: number, outcome: EvaluateOutcome): void {
    if (this.state !== 'collecting' || this.inFlight.get(agentId)?.taskId !== taskId) return;
    this.inFlight.delete(agentId);
    try {
      const checked = checkEvaluation(outcome, {
        classes: this.plan.classes,
        declaredExamples: this.pool.datasetOf(agentId)?.examples,
        holdoutFraction: this.plan.holdoutFraction,
      });
      this.results.push({
        agentId,
        ...checked,
        weight: checked.numExamples,
        evalMs: outcome.evalMs,
        roundTripMs: Date.now() - sentAt,
      });
    } catch (err) {
      this.recordFailure(agentId, err);
    }
    this.progressed();
  }

  private onFailure(agentId: string, taskId: string, err: unknown): void {
    if (this.state !== 'collecting' || this.inFlight.get(agentId)?.taskId !== taskId) return;
    this.inFlight.delete(agentId);
    this.recordFailure(agentId, err);
    this.progressed();
  }

  private recordFailure(agentId: string, err: unknown): void {
    const { code, reason } = errorOf(err);
    this.failures.push({ agentId, code, reason });
    this.log.warn('evaluation task failed', {
      evaluation: this.plan.evaluationId,
      agent: agentId,
      code,
      reason,
    });
  }

  /** Ends the evaluation once nothing more can change it before the deadline. */
  private progressed(): void {
    if (this.state !== 'collecting' || this.inFlight.size > 0) return;
    if (this.plan.agents) {
      const waiting = this.plan.agents.filter((id) => !this.asked.includes(id));
      if (waiting.length === 0) this.finish();
    } else if (this.results.length >= this.plan.minClients) {
      this.finish();
    }
  }

  private onDeadline(): void {
    if (this.state !== 'collecting') return;
    const seconds = Math.round(this.plan.timeoutMs / 1000);
    for (const [agentId, t] of this.inFlight) {
      this.pool.cancelTask(agentId, t.taskId);
      this.failures.push({ agentId, code: 'LOOM_ERR_TASK_FAILED', reason: `no result within ${seconds} s` });
    }
    this.inFlight.clear();
    for (const agentId of this.plan.agents ?? []) {
      if (this.asked.includes(agentId)) continue;
      this.failures.push({
        agentId,
        code: 'LOOM_ERR_AGENT_DISCONNECTED',
        reason: `the agent was not connected within ${seconds} s`,
      });
    }
    this.finish();
  }

  private finish(): void {
    if (this.results.length >= this.plan.minClients) {
      this.end('completed');
      return;
    }
    this.end(
      'failed',
      new LoomError(
        'LOOM_ERR_ROUND_QUORUM',
        `evaluation ${this.plan.evaluationId} got ${this.results.length} of the ${this.plan.minClients} site reports it needs ` +
          `(${this.asked.length} agents asked, ${this.failures.length} failures)`,
      ),
    );
  }

  private end(state: EvaluationRoundResult['state'], error?: LoomError): void {
    if (this.state !== 'collecting') return;
    this.state = state;
    clearTimeout(this.timer);
    this.unsubscribe?.();
    for (const [agentId, t] of this.inFlight) this.pool.cancelTask(agentId, t.taskId);
    this.inFlight.clear();
    const cap = weightCap(this.declaredHoldout, this.plan.weightCapRatio ?? EVALUATION_WEIGHT_CAP_RATIO);
    for (const r of this.results) r.weight = evaluationWeight(r.numExamples, cap);
    const aggregate = aggregateEvaluations(this.results, cap);
    this.settle?.({
      state,
      ...(error ? { error: { code: error.code, message: error.message } } : {}),
      minClients: this.plan.minClients,
      asked: [...this.asked],
      results: [...this.results],
      failures: [...this.failures],
      ...(aggregate ? { aggregate } : {}),
      startedAt: new Date(this.started).toISOString(),
      durationMs: Date.now() - this.started,
    });
  }
}

/** Runs one federated evaluation to its end (see `EvaluationRound`). */
export function runEvaluationRound(
  pool: AgentPool,
  plan: EvaluationPlan,
  signal: AbortSignal,
  log: Logger,
): Promise<EvaluationRoundResult> {
  return new EvaluationRound(pool, plan, log).run(signal);
}

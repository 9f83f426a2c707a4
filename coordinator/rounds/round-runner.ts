// Runs one federated round: samples agents, sends each the task, validates and folds every update
// as it arrives, replaces agents that drop while quorum is still reachable, and finalises at the
// target count or the deadline. Knows nothing of sockets (AgentPool) or of the job store.
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { ModelRef, TrainHyperParameters } from '../../shared/protocol/index.ts';
import { encodeTensorBytes } from '../../shared/protocol/index.ts';
import { specsOf, type WeightTensor } from '../../shared/tensors/index.ts';
import { type AggregationEngine, type Aggregator, applyAverageDelta } from '../aggregation/index.ts';
import type { AgentPool, TrainOutcome } from './agent-pool.ts';

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
  /** Optional L2 bound on each update. */
  maxUpdateNorm?: number;
  /** FedAvg server learning rate (default 1: plain FedAvg). */
  serverLearningRate?: number;
  /** How often one agent may be tried in a round after it disconnected (default 2). */
  maxAttemptsPerAgent?: number;
}

export interface RoundParticipant {
  agentId: string;
  numExamples: number;
  metrics: Record<string, number>;
  trainMs: number;
  /** From sending the task to receiving its result, as the coordinator saw it. */
  roundTripMs: number;
}

export interface RoundFailure {
  agentId: string;
  code: string;
  reason: string;
}

export interface RoundOutcome {
  round: number;
  sampled: string[];
  participants: RoundParticipant[];
  failures: RoundFailure[];
  numExamples: number;
  /** Example-weighted mean of each metric the agents reported. */
  metrics: Record<string, number>;
  weights: WeightTensor[];
  startedAt: string;
  durationMs: number;
  /** Longest agent-reported training time: the part of the round spent training. */
  trainMs: number;
}

/** Example-weighted mean of each metric over the participants. */
export function weightedMetrics(participants: readonly RoundParticipant[]): Record<string, number> {
  const sums: Record<string, { total: number; weight: number }> = {};
  for (const p of participants) {
    for (const [k, v] of Object.entries(p.metrics)) {
      const s = sums[k] ?? { total: 0, weight: 0 };
      sums[k] = s;
      s.total += v * p.numExamples;
      s.weight += p.numExamples;
    }
  }
  const out: Record<string, number> = {};
  for (const [k, s] of Object.entries(sums)) if (s.weight > 0) out[k] = s.total / s.weight;
  return out;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * Runs one round to completion. Resolves with the new global weights once `targetClients`
 * updates are folded, or at the deadline with at least `minClients`; when no agent is left to
 * try and quorum is met it finalises early. Rejects with LOOM_ERR_ROUND_QUORUM at the deadline
 * without quorum, or LOOM_ERR_JOB_CANCELLED when `signal` aborts. Never hangs past the deadline.
 */
export function runRound(
  pool: AgentPool,
  plan: RoundPlan,
  signal: AbortSignal,
  log: Logger,
): Promise<RoundOutcome> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const maxAttempts = plan.maxAttemptsPerAgent ?? 2;
  // Encoded once; every agent's task shares these bytes.
  const weightBytes = encodeTensorBytes(plan.global);
  let aggregator: Aggregator | undefined = plan.engine.createAggregator(specsOf(plan.global), {
    ...(plan.maxUpdateNorm ? { maxNorm: plan.maxUpdateNorm } : {}),
  });
  const sampled: string[] = [];
  const attempts = new Map<string, number>();
  const succeeded = new Set<string>();
  const inFlight = new Map<string, { taskId: string; sentAt: number }>();
  const participants: RoundParticipant[] = [];
  const failures: RoundFailure[] = [];
  let taskSeq = 0;

  return new Promise<RoundOutcome>((resolve, reject) => {
    let settled = false;
    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
      for (const [agentId, t] of inFlight) pool.cancelTask(agentId, t.taskId);
      inFlight.clear();
    };
    const fail = (err: LoomError): void => {
      if (settled) return;
      cleanup();
      aggregator?.dispose();
      aggregator = undefined;
      reject(err);
    };
    const finish = (): void => {
      if (settled || !aggregator) return;
      cleanup();
      try {
        const average = aggregator.average();
        const weights = applyAverageDelta(plan.global, average, plan.serverLearningRate ?? 1);
        // Each update was finite, but their weighted sum can still overflow float32; such a model
        // must never reach the registry or the agents.
        const bad = weights.find((w) => !w.data.every(Number.isFinite));
        if (bad) {
          throw new LoomError(
            'LOOM_ERR_UPDATE_REJECTED',
            `round ${plan.round}: the aggregated weights of "${bad.name}" are not finite (updates too large); no version written`,
          );
        }
        const trainMs = Math.max(0, ...participants.map((p) => p.trainMs));
        resolve({
          round: plan.round,
          sampled,
          participants,
          failures,
          numExamples: participants.reduce((n, p) => n + p.numExamples, 0),
          metrics: weightedMetrics(participants),
          weights,
          startedAt,
          durationMs: Date.now() - started,
          trainMs,
        });
      } catch (err) {
        reject(err);
      } finally {
        aggregator.dispose();
        aggregator = undefined;
      }
    };

    const eligible = (agentId: string): boolean =>
      !succeeded.has(agentId) && !inFlight.has(agentId) && (attempts.get(agentId) ?? 0) < maxAttempts;

    const dispatch = (): void => {
      if (settled) return;
      const wanted = plan.targetClients - participants.length - inFlight.size;
      if (wanted <= 0) return;
      const candidates = shuffle(pool.onlineAgentIds().filter(eligible)).slice(0, wanted);
      for (const agentId of candidates) send(agentId);
    };

    const send = (agentId: string): void => {
      const taskId = `${plan.jobId}.r${plan.round}.t${++taskSeq}`;
      attempts.set(agentId, (attempts.get(agentId) ?? 0) + 1);
      if (!sampled.includes(agentId)) sampled.push(agentId);
      const sentAt = Date.now();
      inFlight.set(agentId, { taskId, sentAt });
      pool
        .runTrainTask(agentId, {
          taskId,
          jobId: plan.jobId,
          round: plan.round,
          model: plan.model,
          hyper: plan.hyper,
          weights: weightBytes,
        })
        .then(
          (outcome) => onResult(agentId, taskId, sentAt, outcome),
          (err: unknown) => onFailure(agentId, taskId, err),
        );
    };

    const onResult = (agentId: string, taskId: string, sentAt: number, outcome: TrainOutcome): void => {
      if (settled || inFlight.get(agentId)?.taskId !== taskId || !aggregator) return;
      inFlight.delete(agentId);
      try {
        if (outcome.numExamples <= 0) {
          throw new LoomError('LOOM_ERR_UPDATE_REJECTED', 'update reports no training examples');
        }
        aggregator.fold(outcome.update, outcome.numExamples);
        succeeded.add(agentId);
        participants.push({
          agentId,
          numExamples: outcome.numExamples,
          metrics: outcome.metrics,
          trainMs: outcome.trainMs,
          roundTripMs: Date.now() - sentAt,
        });
      } catch (err) {
        // A rejected update does not earn the agent another try this round.
        attempts.set(agentId, maxAttempts);
        recordFailure(agentId, err);
      }
      progress();
    };

    const onFailure = (agentId: string, taskId: string, err: unknown): void => {
      if (settled || inFlight.get(agentId)?.taskId !== taskId) return;
      inFlight.delete(agentId);
      if (!isLoomError(err, 'LOOM_ERR_AGENT_DISCONNECTED')) attempts.set(agentId, maxAttempts);
      recordFailure(agentId, err);
      progress();
    };

    const recordFailure = (agentId: string, err: unknown): void => {
      const code = isLoomError(err) ? err.code : 'LOOM_ERR_INTERNAL';
      const reason = err instanceof Error ? err.message : String(err);
      failures.push({ agentId, code, reason });
      log.warn('round task failed', { job: plan.jobId, round: plan.round, agent: agentId, code, reason });
    };

    const progress = (): void => {
      if (participants.length >= plan.targetClients) {
        finish();
        return;
      }
      dispatch();
      // Nobody left to wait for: finalise now if quorum is met, else wait for agents to connect.
      if (inFlight.size === 0 && participants.length >= plan.minClients) finish();
    };

    const timer = setTimeout(() => {
      if (participants.length >= plan.minClients) {
        log.info('round deadline reached, finalising with the updates received', {
          job: plan.jobId,
          round: plan.round,
          updates: participants.length,
        });
        finish();
        return;
      }
      fail(
        new LoomError(
          'LOOM_ERR_ROUND_QUORUM',
          `round ${plan.round} got ${participants.length} of the ${plan.minClients} updates it needs within ${Math.round(plan.timeoutMs / 1000)} s ` +
            `(${pool.onlineAgentIds().length} agents online, ${failures.length} failures)`,
          { details: { round: plan.round, received: participants.length, required: plan.minClients } },
        ),
      );
    }, plan.timeoutMs);
    const unsubscribe = pool.onAgentOnline(() => dispatch());
    const onAbort = (): void => fail(new LoomError('LOOM_ERR_JOB_CANCELLED', 'the job was cancelled'));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    dispatch();
  });
}

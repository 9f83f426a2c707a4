// What a rollout is: its request (model, version, target, waves, health limits), its waves and
// the state of every agent it reaches, as stored and shown. Requests are checked here.
import type { z } from 'zod';
import {
  parseBody,
  parseWith,
  RolloutBody,
  RolloutTarget as RolloutTargetBody,
  Waves,
} from '../../shared/api-schemas/index.ts';

/** Which agents a rollout reaches: all, those with every given label, or the named ones. */
export type RolloutTarget = { all: true } | { labels: Record<string, string> } | { agents: string[] };

/** The health limits a wave is judged by. */
export interface RolloutPolicy {
  /** Seconds a wave is watched once its agents run the version. */
  healthWindowSec: number;
  /** Largest share of failed predictions, 0 to 1. */
  maxErrorRate: number;
  /** Largest 99th percentile latency, in ms (the upper bound of the histogram bucket it falls in). */
  maxP99Ms: number;
  /** Predictions a wave must have answered before it can pass (0: activation alone suffices). */
  minRequests: number;
}

/** Defaults of a rollout request. */
export const ROLLOUT_DEFAULTS = {
  waves: [100],
  healthWindowSec: 60,
  maxErrorRate: 0.01,
  maxP99Ms: 1000,
  minRequests: 0,
} as const;

export type RolloutState = 'running' | 'paused' | 'completed' | 'rolled-back';

export type AgentRolloutState =
  | 'pending'
  | 'transferring'
  | 'verifying'
  | 'active'
  | 'failed'
  | 'rolling-back'
  | 'rolled-back';

export type WaveState = 'pending' | 'running' | 'passed' | 'failed';

/** Requests, failures and latency histogram (fixed buckets) added up over agents and reports. */
export interface HealthSummary {
  requests: number;
  errors: number;
  errorRate: number;
  /** Upper bound of the bucket of the 99th percentile, ms; null with no requests, -1 above the last bucket. */
  p99Ms: number | null;
  latency: number[];
}

export interface RolloutWave {
  /** Share of the targets reached once this wave is done, percent. */
  percent: number;
  agents: string[];
  state: WaveState;
  startedAt?: string;
  /** When every connected agent of the wave ran the version: the health window starts here. */
  observingSince?: string;
  endedAt?: string;
  health?: HealthSummary;
  /** Why it is waiting, passed or failed. */
  note?: string;
}

export interface RolloutAgent {
  id: string;
  wave: number;
  /** The version it ran before (null: none), what a rollback returns it to. */
  previousVersion: number | null;
  state: AgentRolloutState;
  reason?: string;
  updatedAt: string;
}

export interface RolloutRecord {
  id: string;
  model: string;
  version: number;
  target: RolloutTarget;
  policy: RolloutPolicy;
  state: RolloutState;
  /** Index of the wave in progress (the last one once completed). */
  currentWave: number;
  waves: RolloutWave[];
  agents: Record<string, RolloutAgent>;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  finishedAt?: string;
  /** Why it was rolled back (or paused, or completed). */
  reason?: string;
  /** Set when the rollout moves the agents off a retired version. */
  retiring?: number;
}

/** A checked `POST /v1/rollouts` body. */
export interface RolloutRequest {
  model: string;
  version: number;
  target: RolloutTarget;
  waves: number[];
  policy: RolloutPolicy;
}

/** The target of a request: exactly one of `all: true`, `labels` or `agents`. */
export function parseTarget(raw: unknown): RolloutTarget {
  return targetOf(parseWith(RolloutTargetBody, raw, 'LOOM_ERR_INVALID_ARGUMENT', ['target']));
}

function targetOf(t: z.output<typeof RolloutTargetBody>): RolloutRequest['target'] {
  if (t.all) return { all: true };
  if (t.labels) return { labels: t.labels };
  return { agents: [...new Set(t.agents ?? [])] };
}

/** Wave percentages: 1 to 10 whole numbers, increasing, the last 100. */
export function parseWaves(raw: unknown): number[] {
  return parseWith(Waves, raw, 'LOOM_ERR_INVALID_ARGUMENT', ['waves']) as number[];
}

/** A checked `POST /v1/rollouts` body as a request, with the defaults filled in. */
export function rolloutRequestOf(body: z.output<typeof RolloutBody>): RolloutRequest {
  return {
    model: body.model,
    version: body.version,
    target: targetOf(body.target),
    waves: body.waves === undefined ? [...ROLLOUT_DEFAULTS.waves] : (body.waves as number[]),
    policy: {
      healthWindowSec: body.healthWindowSec ?? ROLLOUT_DEFAULTS.healthWindowSec,
      maxErrorRate: body.maxErrorRate ?? ROLLOUT_DEFAULTS.maxErrorRate,
      maxP99Ms: body.maxP99Ms ?? ROLLOUT_DEFAULTS.maxP99Ms,
      minRequests: body.minRequests ?? ROLLOUT_DEFAULTS.minRequests,
    },
  };
}

/** Checks a `POST /v1/rollouts` body; LOOM_ERR_INVALID_ARGUMENT naming the field. */
export function parseRolloutRequest(body: unknown): RolloutRequest {
  return rolloutRequestOf(parseBody(RolloutBody, body));
}

/**
 * Splits `agents` (sorted by id, so a rollout is reproducible) into waves: wave i reaches the
 * first ceil(percent_i × n / 100) agents, less those of the waves before it.
 */
export function assignWaves(agents: readonly string[], percents: readonly number[]): string[][] {
  const sorted = [...agents].sort();
  let from = 0;
  return percents.map((p) => {
    const to = Math.ceil((p * sorted.length) / 100);
    const wave = sorted.slice(from, to);
    from = Math.max(from, to);
    return wave;
  });
}

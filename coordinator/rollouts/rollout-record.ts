// What a rollout is: its request (model, version, target, waves, health limits), its waves and
// the state of every agent it reaches, as stored and shown. Requests are checked here.
import type { z } from 'zod';
import {
  parseBody,
  parseWith,
  RolloutBody,
  RolloutPlanBody,
  RolloutTarget as RolloutTargetBody,
  Waves,
  withoutNulls,
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
  /**
   * Share of a wave's agents that must be failing (refused the version, or broke a limit on their
   * own counts) for the wave to fail: it fails when more than failQuorum × its agents that took
   * part fail. 0: any one agent fails the wave. Absent in rollouts stored before it existed: the default.
   */
  failQuorum?: number;
}

/** Defaults of a rollout request. */
export const ROLLOUT_DEFAULTS = {
  waves: [100],
  healthWindowSec: 60,
  maxErrorRate: 0.01,
  maxP99Ms: 1000,
  minRequests: 0,
  /** More than half of a wave's agents failing fails it: one agent of several cannot, one alone can. */
  failQuorum: 0.5,
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

/** Serving counts one agent reported for the version while its wave was watched. */
export interface AgentHealth {
  requests: number;
  errors: number;
  /** Per latency bucket (HEALTH_LATENCY_BUCKETS_MS, plus one above the last). */
  latency: number[];
}

export interface RolloutAgent {
  id: string;
  wave: number;
  /** The version it ran before (null: none), what a rollback returns it to. */
  previousVersion: number | null;
  state: AgentRolloutState;
  reason?: string;
  /** Set with state failed when its own serving health broke a limit (the reason says which). */
  unhealthy?: boolean;
  /** Its counts over its wave's health window, saved with the rollout so a restart resumes the window. */
  health?: AgentHealth;
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
  /** Set when a promotion to production started it: what its rollback restores in the registry. */
  promotion?: RolloutPromotion;
}

/** The registry as a promotion found it, so that a rollback can put the stages back. */
export interface RolloutPromotion {
  /** The production version the promotion archived (null: there was none). */
  previousProduction: number | null;
  /** The stage the promoted version had before. */
  previousStage: string;
  /** Set once a rollback has put the stages back (or found them changed since, and left them). */
  restoredAt?: string;
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
export function parseTarget(raw: unknown, field = 'target'): RolloutTarget {
  return targetOf(parseWith(RolloutTargetBody, raw, 'LOOM_ERR_INVALID_ARGUMENT', field.split('.')));
}

function targetOf(t: z.output<typeof RolloutTargetBody>): RolloutTarget {
  if (t.all) return { all: true };
  if (t.labels) return { labels: t.labels };
  return { agents: [...new Set(t.agents ?? [])] };
}

/** Wave percentages: 1 to 10 whole numbers, increasing, the last 100. */
export function parseWaves(raw: unknown, field = 'waves'): number[] {
  return parseWith(Waves, raw, 'LOOM_ERR_INVALID_ARGUMENT', field.split('.')) as number[];
}

/**
 * How a promotion rolls its version out: the fields of a `POST /v1/rollouts` body other than
 * model and version, each optional. Given in a promotion request, a job's config or a model's
 * promotion policy; a field left out comes from the next of those, then PROMOTION_ROLLOUT_DEFAULTS.
 */
export interface RolloutPlan {
  target?: RolloutTarget;
  waves?: number[];
  healthWindowSec?: number;
  maxErrorRate?: number;
  maxP99Ms?: number;
  minRequests?: number;
  failQuorum?: number;
}

/** What a promotion's rollout uses for a field no plan sets: every agent, one wave, the rollout defaults. */
export const PROMOTION_ROLLOUT_DEFAULTS: Readonly<{
  target: RolloutTarget;
  waves: readonly number[];
  healthWindowSec: number;
  maxErrorRate: number;
  maxP99Ms: number;
  minRequests: number;
  failQuorum: number;
}> = Object.freeze({
  target: Object.freeze({ all: true }) as RolloutTarget,
  waves: ROLLOUT_DEFAULTS.waves,
  healthWindowSec: ROLLOUT_DEFAULTS.healthWindowSec,
  maxErrorRate: ROLLOUT_DEFAULTS.maxErrorRate,
  maxP99Ms: ROLLOUT_DEFAULTS.maxP99Ms,
  minRequests: ROLLOUT_DEFAULTS.minRequests,
  failQuorum: ROLLOUT_DEFAULTS.failQuorum,
});

/** Checks a rollout plan (`field` names it in errors); the same rules as `POST /v1/rollouts`. */
export function parseRolloutPlan(raw: unknown, field = 'rollout'): RolloutPlan {
  const plan = parseWith(RolloutPlanBody, withoutNulls(raw), 'LOOM_ERR_INVALID_ARGUMENT', field.split('.'));
  const out: RolloutPlan = {};
  if (plan.target) out.target = targetOf(plan.target);
  if (plan.waves) out.waves = plan.waves as number[];
  for (const key of ['healthWindowSec', 'maxErrorRate', 'maxP99Ms', 'minRequests', 'failQuorum'] as const) {
    if (plan[key] !== undefined) out[key] = plan[key];
  }
  return out;
}

/**
 * The rollout request of a promotion: each field from the first plan that sets it (request,
 * then job or policy), else PROMOTION_ROLLOUT_DEFAULTS.
 */
export function resolveRolloutPlan(
  model: string,
  version: number,
  ...plans: (RolloutPlan | undefined)[]
): RolloutRequest {
  const pick = <K extends keyof RolloutPlan>(key: K): NonNullable<RolloutPlan[K]> | undefined => {
    for (const p of plans) if (p?.[key] !== undefined) return p[key] as NonNullable<RolloutPlan[K]>;
    return undefined;
  };
  const d = PROMOTION_ROLLOUT_DEFAULTS;
  return {
    model,
    version,
    target: structuredClone(pick('target') ?? d.target),
    waves: [...(pick('waves') ?? d.waves)],
    policy: {
      healthWindowSec: pick('healthWindowSec') ?? d.healthWindowSec,
      maxErrorRate: pick('maxErrorRate') ?? d.maxErrorRate,
      maxP99Ms: pick('maxP99Ms') ?? d.maxP99Ms,
      minRequests: pick('minRequests') ?? d.minRequests,
      failQuorum: pick('failQuorum') ?? d.failQuorum,
    },
  };
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
      failQuorum: body.failQuorum ?? ROLLOUT_DEFAULTS.failQuorum,
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

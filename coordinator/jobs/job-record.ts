// Jobs as stored and as the API returns them, and validation of a new job's configuration.
import type { z } from 'zod';
import { JobCreateBody, parseBody } from '../../shared/api-schemas/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import type { EngineName } from '../aggregation/index.ts';
import { parseRolloutPlan, type RolloutPlan } from '../rollouts/index.ts';
import { ROBUSTNESS_DEFAULTS, type RoundProgress, type RoundResult } from '../rounds/index.ts';
import type { Experiment } from './experiment.ts';

export type JobState = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface JobConfig {
  model: string;
  /** Registry version the job starts from (default: the model's latest). */
  baseVersion?: number;
  rounds: number;
  /** Agents asked per round; when absent, `fraction` of the online agents (at least minClients). */
  clientsPerRound?: number;
  fraction?: number;
  minClients: number;
  roundTimeoutSec: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Register a version every N rounds (the last round always registers one). */
  versionEvery: number;
  serverLearningRate: number;
  /** Updates with a larger L2 norm are refused as their agent's failure (absolute bound). */
  maxUpdateNorm?: number;
  /** An agent's weight is at most this many times the round's median declared dataset size (0: no cap). */
  weightCapRatio: number;
  /** Updates are clipped to this many times the median norm of the round's first updates (0: no clipping). */
  clipFactor: number;
  /** Agents never sampled for this job. */
  excludeAgents?: string[];
  /** Only agents carrying every one of these labels train (and evaluate) for the job; absent: any. */
  labels?: Record<string, string>;
  /** Allow this job while another job of the same model is running. */
  allowConcurrent?: boolean;
  engine?: EngineName;
  /**
   * Evaluate the version written every N rounds on the sites' hold-out data (absent or 0: only
   * the final version, which is always evaluated).
   */
  evaluateEvery?: number;
  /**
   * `if-better`: once the final version is evaluated, promote it to production when it passes the
   * model's gate (which deploys it). Default: it stays a candidate.
   */
  promote?: 'if-better';
  /** With `promote: "if-better"`: how the promotion rolls out (fields left out: the model's policy, then defaults). */
  rollout?: RolloutPlan;
}

/** A checked `POST /v1/jobs` body, before the defaults are filled in. */
export type JobCreateRequest = z.output<typeof JobCreateBody>;

/** What became of a job's final version. */
export interface JobPromotion {
  version: number;
  /** Its stage once the job ended: none, staging (the policy's stageOnComplete) or production. */
  stage: string;
  /** Set with `promote: "if-better"`: whether the gate let it into production. */
  promoted?: boolean;
  /** Why the gate refused it. */
  reasons?: string[];
  /** The rollout the promotion started (null: no agent to roll out to). */
  rollout?: string | null;
  error?: { code: string; message: string };
}

/** A federated evaluation a job ran, as its record shows it (the full one is under the model). */
export interface JobEvaluation {
  round: number;
  version: number;
  evaluationId: string;
  state: 'running' | 'completed' | 'failed' | 'cancelled';
  /** Example-weighted over the sites that reported. */
  numExamples?: number;
  loss?: number;
  accuracy?: number;
  sites: number;
  failures: number;
  error?: { code: string; message: string };
}

/** A round as stored: how it ended, every agent's outcome, and the version it wrote. */
export type RoundRecord = Omit<RoundResult, 'weights'> & {
  /** Registry version written for this round, if any. */
  version?: number;
};

/** Something an operator should look at before trusting a job's result. */
export interface JobWarning {
  at: string;
  kind: 'data-mismatch';
  agentId: string;
  message: string;
}

export interface JobRecord {
  id: string;
  config: JobConfig;
  state: JobState;
  createdAt: string;
  createdBy: string;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  currentRound: number;
  baseVersion: number;
  /** Newest registry version this job wrote. */
  latestVersion?: number;
  /** Why the job failed or was cancelled. */
  error?: { code: string; message: string };
  /** Agents not sampled any more for this job: they declined it for good (their data cannot serve the model). */
  excludedAgents: Record<string, { code: string; reason: string; round: number }>;
  warnings: JobWarning[];
  /** Federated evaluations of the job's versions (every `evaluateEvery` rounds, and the final one). */
  evaluations?: JobEvaluation[];
  /** The final version's stage and, with `promote`, whether it was promoted. */
  promotion?: JobPromotion;
  /**
   * Hyper-parameters, the agents that took part (their claimed software and dataset
   * fingerprint, their labels) and every round's metrics. Absent from jobs made before it existed.
   */
  experiment?: Experiment;
}

/** A job as `GET /v1/jobs/:id` shows it: the record, every round so far, and the round in progress. */
export interface JobView extends JobRecord {
  rounds: RoundRecord[];
  roundInProgress?: RoundProgress;
}

export const JOB_DEFAULTS = {
  rounds: 5,
  minClients: 1,
  roundTimeoutSec: 300,
  epochs: 1,
  batchSize: 32,
  learningRate: 0.05,
  versionEvery: 1,
  serverLearningRate: 1,
  weightCapRatio: ROBUSTNESS_DEFAULTS.weightCapRatio,
  clipFactor: ROBUSTNESS_DEFAULTS.clipFactor,
} as const;

/**
 * A checked `POST /v1/jobs` body as a job's configuration: the defaults filled in, and the rules
 * that span fields checked (LOOM_ERR_INVALID_ARGUMENT naming the field).
 */
export function jobConfigOf(body: JobCreateRequest): JobConfig {
  const config: JobConfig = {
    model: body.model,
    rounds: body.rounds ?? JOB_DEFAULTS.rounds,
    minClients: body.minClients ?? JOB_DEFAULTS.minClients,
    roundTimeoutSec: body.roundTimeoutSec ?? JOB_DEFAULTS.roundTimeoutSec,
    epochs: body.epochs ?? JOB_DEFAULTS.epochs,
    batchSize: body.batchSize ?? JOB_DEFAULTS.batchSize,
    learningRate: body.learningRate ?? JOB_DEFAULTS.learningRate,
    versionEvery: body.versionEvery ?? JOB_DEFAULTS.versionEvery,
    serverLearningRate: body.serverLearningRate ?? JOB_DEFAULTS.serverLearningRate,
    weightCapRatio: body.weightCapRatio ?? JOB_DEFAULTS.weightCapRatio,
    clipFactor: body.clipFactor ?? JOB_DEFAULTS.clipFactor,
  };
  if (config.weightCapRatio > 0 && config.weightCapRatio < 1) {
    fail('weightCapRatio', 'must be 0 (no cap) or at least 1');
  }
  if (body.excludeAgents !== undefined) config.excludeAgents = [...new Set(body.excludeAgents)];
  if (body.allowConcurrent !== undefined) config.allowConcurrent = body.allowConcurrent;
  if (body.baseVersion !== undefined) config.baseVersion = body.baseVersion;
  if (body.clientsPerRound !== undefined) config.clientsPerRound = body.clientsPerRound;
  if (body.fraction !== undefined) config.fraction = body.fraction;
  if (config.clientsPerRound !== undefined && config.fraction !== undefined) {
    fail('fraction', 'cannot be given together with clientsPerRound');
  }
  if (config.clientsPerRound !== undefined && config.clientsPerRound < config.minClients) {
    fail('clientsPerRound', `must be at least minClients (${config.minClients})`);
  }
  if (body.evaluateEvery !== undefined && body.evaluateEvery > 0) config.evaluateEvery = body.evaluateEvery;
  if (body.promote !== undefined) config.promote = body.promote;
  if (body.maxUpdateNorm !== undefined) config.maxUpdateNorm = body.maxUpdateNorm;
  if (body.engine !== undefined) config.engine = body.engine;
  if (body.labels !== undefined) config.labels = body.labels;
  if (body.rollout !== undefined) {
    if (config.promote !== 'if-better') fail('rollout', 'is for promote: "if-better"');
    config.rollout = parseRolloutPlan(body.rollout, 'rollout');
  }
  return config;
}

/** Validates a `POST /v1/jobs` body; throws LOOM_ERR_INVALID_ARGUMENT naming the field. */
export function parseJobConfig(body: unknown): JobConfig {
  return jobConfigOf(parseBody(JobCreateBody, body));
}

function fail(field: string, message: string): never {
  throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `${field} ${message}`, { details: { field } });
}

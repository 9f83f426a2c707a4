// Jobs as stored and as the API returns them, and validation of a new job's configuration.
import { FieldReader } from '../../shared/protocol/index.ts';
import { ENGINE_NAMES, type EngineName } from '../aggregation/index.ts';
import { parseRolloutPlan, type RolloutPlan } from '../rollouts/index.ts';
import { ROBUSTNESS_DEFAULTS, type RoundProgress, type RoundResult } from '../rounds/index.ts';

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

const JOB_FIELDS = [
  'model',
  'baseVersion',
  'rounds',
  'clientsPerRound',
  'fraction',
  'minClients',
  'roundTimeoutSec',
  'epochs',
  'batchSize',
  'learningRate',
  'versionEvery',
  'serverLearningRate',
  'maxUpdateNorm',
  'weightCapRatio',
  'clipFactor',
  'excludeAgents',
  'allowConcurrent',
  'engine',
  'evaluateEvery',
  'promote',
  'rollout',
] as const;

/** Validates a `POST /v1/jobs` body; throws LOOM_ERR_INVALID_ARGUMENT naming the field. */
export function parseJobConfig(body: unknown): JobConfig {
  const r = FieldReader.of(body, '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys(JOB_FIELDS);
  const config: JobConfig = {
    model: r.string('model', { max: 128 }),
    rounds: r.has('rounds') ? r.integer('rounds', { min: 1, max: 100_000 }) : JOB_DEFAULTS.rounds,
    minClients: r.has('minClients')
      ? r.integer('minClients', { min: 1, max: 100_000 })
      : JOB_DEFAULTS.minClients,
    roundTimeoutSec:
      r.optionalNumber('roundTimeoutSec', { min: 0, exclusiveMin: true, max: 7 * 86_400 }) ??
      JOB_DEFAULTS.roundTimeoutSec,
    epochs: r.has('epochs') ? r.integer('epochs', { min: 1, max: 1000 }) : JOB_DEFAULTS.epochs,
    batchSize: r.has('batchSize') ? r.integer('batchSize', { min: 1, max: 65_536 }) : JOB_DEFAULTS.batchSize,
    learningRate:
      r.optionalNumber('learningRate', { min: 0, exclusiveMin: true, max: 100 }) ?? JOB_DEFAULTS.learningRate,
    versionEvery: r.has('versionEvery') ? r.integer('versionEvery', { min: 1 }) : JOB_DEFAULTS.versionEvery,
    serverLearningRate:
      r.optionalNumber('serverLearningRate', { min: 0, exclusiveMin: true, max: 100 }) ??
      JOB_DEFAULTS.serverLearningRate,
    weightCapRatio: r.optionalNumber('weightCapRatio', { min: 0, max: 1000 }) ?? JOB_DEFAULTS.weightCapRatio,
    clipFactor: r.optionalNumber('clipFactor', { min: 0, max: 1000 }) ?? JOB_DEFAULTS.clipFactor,
  };
  if (config.weightCapRatio > 0 && config.weightCapRatio < 1) {
    r.fail('weightCapRatio', 'must be 0 (no cap) or at least 1');
  }
  if (r.has('excludeAgents'))
    config.excludeAgents = [...new Set(r.stringArray('excludeAgents', { max: 10_000 }))];
  if (r.has('allowConcurrent')) config.allowConcurrent = r.boolean('allowConcurrent');
  if (r.has('baseVersion')) config.baseVersion = r.integer('baseVersion', { min: 1 });
  if (r.has('clientsPerRound'))
    config.clientsPerRound = r.integer('clientsPerRound', { min: 1, max: 100_000 });
  if (r.has('fraction')) config.fraction = r.number('fraction', { min: 0, exclusiveMin: true, max: 1 });
  if (config.clientsPerRound !== undefined && config.fraction !== undefined) {
    r.fail('fraction', 'cannot be given together with clientsPerRound');
  }
  if (config.clientsPerRound !== undefined && config.clientsPerRound < config.minClients) {
    r.fail('clientsPerRound', `must be at least minClients (${config.minClients})`);
  }
  if (r.has('evaluateEvery')) {
    const every = r.integer('evaluateEvery', { min: 0, max: 100_000 });
    if (every > 0) config.evaluateEvery = every;
  }
  if (r.has('promote')) {
    const promote = r.string('promote', { max: 32 });
    if (promote !== 'if-better') r.fail('promote', 'must be "if-better" (or left out)');
    config.promote = 'if-better';
  }
  if (r.has('rollout')) {
    if (config.promote !== 'if-better') r.fail('rollout', 'is for promote: "if-better"');
    config.rollout = parseRolloutPlan(r.raw('rollout'), 'rollout');
  }
  if (r.has('maxUpdateNorm'))
    config.maxUpdateNorm = r.number('maxUpdateNorm', { min: 0, exclusiveMin: true });
  if (r.has('engine')) {
    const engine = r.string('engine');
    if (!ENGINE_NAMES.includes(engine as EngineName))
      r.fail('engine', `must be one of ${ENGINE_NAMES.join(', ')}`);
    config.engine = engine as EngineName;
  }
  return config;
}

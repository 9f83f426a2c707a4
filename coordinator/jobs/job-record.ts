// Jobs as stored and as the API returns them, and validation of a new job's configuration.
import { FieldReader } from '../../shared/protocol/index.ts';
import { ENGINE_NAMES, type EngineName } from '../aggregation/index.ts';
import type { RoundFailure, RoundParticipant } from '../rounds/index.ts';

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
  maxUpdateNorm?: number;
  engine?: EngineName;
}

export interface RoundRecord {
  round: number;
  startedAt: string;
  durationMs: number;
  trainMs: number;
  sampled: string[];
  participants: RoundParticipant[];
  failures: RoundFailure[];
  numExamples: number;
  metrics: Record<string, number>;
  /** Registry version written for this round, if any. */
  version?: number;
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
  rounds: RoundRecord[];
  /** Failures of rounds that did not complete (the round that failed the job). */
  error?: { code: string; message: string };
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
  'engine',
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
  };
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

// Federated training jobs: the body that starts one and the record that shows it.
import { z } from 'zod';
import { labelsInput } from './agents.ts';
import { ErrorPair, next } from './common.ts';
import { bool, finite, integer, oneOf, strictBody, text } from './fields.ts';
import { RolloutPlanBody } from './rollouts.ts';

/** Aggregation engines a job may ask for. */
export const ENGINE_NAME_VALUES = ['typed-array', 'tfjs'] as const;

export const JOB_STATE_NAMES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;

/**
 * `POST /v1/jobs`. Only `model` is required; the coordinator fills in the defaults and checks the
 * rules that span fields (clientsPerRound or fraction, clientsPerRound ≥ minClients, weightCapRatio
 * 0 or ≥ 1).
 */
export const JobCreateBody = strictBody({
  model: text({ max: 128 }),
  baseVersion: integer({ min: 1 })
    .optional()
    .meta({ description: "Version to start from (default the model's latest)." }),
  rounds: integer({ min: 1, max: 100_000 }).optional().meta({ description: 'Default 5.' }),
  clientsPerRound: integer({ min: 1, max: 100_000 })
    .optional()
    .meta({ description: 'Agents asked per round; not with fraction.' }),
  fraction: finite({ min: 0, exclusiveMin: true, max: 1 })
    .optional()
    .meta({ description: 'Share of online agents asked per round; not with clientsPerRound.' }),
  minClients: integer({ min: 1, max: 100_000 }).optional().meta({ description: 'Default 1.' }),
  roundTimeoutSec: finite({ min: 0, exclusiveMin: true, max: 7 * 86_400 })
    .optional()
    .meta({ description: 'Default 300.' }),
  epochs: integer({ min: 1, max: 1000 }).optional().meta({ description: 'Default 1.' }),
  batchSize: integer({ min: 1, max: 65_536 }).optional().meta({ description: 'Default 32.' }),
  learningRate: finite({ min: 0, exclusiveMin: true, max: 100 })
    .optional()
    .meta({ description: 'Default 0.05.' }),
  versionEvery: integer({ min: 1 })
    .optional()
    .meta({ description: 'Register a version every N rounds (default 1).' }),
  serverLearningRate: finite({ min: 0, exclusiveMin: true, max: 100 })
    .optional()
    .meta({ description: 'Default 1.' }),
  maxUpdateNorm: finite({ min: 0, exclusiveMin: true })
    .optional()
    .meta({ description: 'Updates with a larger L2 norm are refused.' }),
  weightCapRatio: finite({ min: 0, max: 1000 }).optional().meta({
    description: 'Largest agent weight as a multiple of the median dataset size: 0 (no cap) or ≥ 1.',
  }),
  clipFactor: finite({ min: 0, max: 1000 })
    .optional()
    .meta({ description: 'Clip updates to this multiple of the median norm (0: no clipping).' }),
  excludeAgents: z
    .array(z.string({ error: 'must be an array of strings' }), { error: 'must be an array' })
    .max(10_000, 'must have at most 10000 items')
    .optional()
    .meta({ description: 'Agents never sampled for this job.' }),
  allowConcurrent: bool().optional(),
  engine: oneOf(ENGINE_NAME_VALUES).optional(),
  evaluateEvery: integer({ min: 0, max: 100_000 })
    .optional()
    .meta({ description: 'Evaluate every N rounds (0 or absent: the final version only).' }),
  promote: oneOf(['if-better'], 'must be "if-better" (or left out)').optional(),
  labels: labelsInput('labels')
    .refine((l) => Object.keys(l).length > 0, 'must name at least one label (or be left out)')
    .optional()
    .meta({
      description: 'Only agents carrying every one of these labels train (and evaluate) for the job.',
    }),
  rollout: RolloutPlanBody.optional().meta({
    description: "With promote: the rollout plan of the promotion (else the policy's, then the defaults).",
  }),
});

/** A job's configuration with the defaults filled in. */
export const JobConfig = z
  .object({
    model: z.string(),
    baseVersion: z.int().optional(),
    rounds: z.int(),
    clientsPerRound: z.int().optional(),
    fraction: z.number().optional(),
    minClients: z.int(),
    roundTimeoutSec: z.number(),
    epochs: z.int(),
    batchSize: z.int(),
    learningRate: z.number(),
    versionEvery: z.int(),
    serverLearningRate: z.number(),
    maxUpdateNorm: z.number().optional(),
    weightCapRatio: z.number(),
    clipFactor: z.number(),
    excludeAgents: z.array(z.string()).optional(),
    allowConcurrent: z.boolean().optional(),
    engine: z.enum(ENGINE_NAME_VALUES).optional(),
    evaluateEvery: z.int().optional(),
    promote: z.literal('if-better').optional(),
    labels: z.record(z.string(), z.string()).optional(),
    rollout: RolloutPlanBody.optional(),
  })
  .meta({ id: 'JobConfig' });

const Failure = z.looseObject({ agentId: z.string(), code: z.string(), reason: z.string() });

/** A finished round as stored. */
export const RoundRecord = z
  .looseObject({
    round: z.int(),
    state: z.string(),
    error: ErrorPair.optional(),
    targetClients: z.int(),
    minClients: z.int(),
    sampled: z.array(z.string()),
    participants: z.array(z.looseObject({ agentId: z.string() })),
    failures: z.array(Failure),
    numExamples: z.number(),
    trainMetrics: z.record(z.string(), z.number()),
    startedAt: z.string(),
    durationMs: z.number(),
    version: z.int().optional(),
  })
  .meta({ id: 'Round' });

export const RoundProgress = z
  .looseObject({
    round: z.int(),
    state: z.string(),
    startedAt: z.string(),
    deadline: z.string(),
    targetClients: z.int(),
    minClients: z.int(),
    sampled: z.array(z.string()),
    inFlight: z.array(z.string()),
    reported: z.array(z.string()),
    failures: z.array(Failure),
  })
  .meta({ id: 'RoundProgress' });

/** A job as `GET /v1/jobs` lists it. */
export const JobSummary = z
  .looseObject({
    id: z.string(),
    config: JobConfig,
    state: z.enum(JOB_STATE_NAMES),
    createdAt: z.string(),
    createdBy: z.string(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    durationMs: z.number().optional(),
    currentRound: z.int(),
    baseVersion: z.int(),
    latestVersion: z.int().optional(),
    error: ErrorPair.optional(),
    excludedAgents: z.record(
      z.string(),
      z.looseObject({ code: z.string(), reason: z.string(), round: z.int() }),
    ),
    warnings: z.array(
      z.looseObject({ at: z.string(), kind: z.string(), agentId: z.string(), message: z.string() }),
    ),
    evaluations: z
      .array(z.looseObject({ round: z.int(), version: z.int(), evaluationId: z.string() }))
      .optional(),
    promotion: z.looseObject({ version: z.int(), stage: z.string() }).optional(),
    experiment: z.record(z.string(), z.unknown()).optional().meta({
      description:
        "Experiment record: hyper-parameters, each agent's software and data fingerprint, per-round metrics.",
    }),
  })
  .meta({ id: 'JobSummary' });

/** A job with every round so far and the round in progress. */
export const JobView = JobSummary.extend({
  rounds: z.array(RoundRecord),
  roundInProgress: RoundProgress.optional(),
}).meta({ id: 'Job' });

export const JobList = z.object({ jobs: z.array(JobSummary), next });

export const jobListFilters = { state: JOB_STATE_NAMES, model: 'string' } as const;

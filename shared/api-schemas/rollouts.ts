// Staged, health-gated rollouts to the edge, and retirement of a version.
import { z } from 'zod';
import { labelsInput } from './agents.ts';
import { finite, integer, strictBody, text } from './fields.ts';

export const ROLLOUT_STATE_NAMES = ['running', 'paused', 'completed', 'rolled-back'] as const;

/** Which agents a rollout reaches: exactly one of all, labels (every one carried) or agents. */
export const RolloutTarget = strictBody({
  all: z.literal(true, { error: 'must be true' }).nullish(),
  labels: labelsInput('target.labels')
    .refine((l) => Object.keys(l).length > 0, 'must name at least one label')
    .nullish(),
  agents: z
    .array(
      z
        .string({ error: 'must hold agent ids' })
        .min(1, 'must hold agent ids')
        .max(256, 'must hold agent ids'),
      { error: 'must be an array' },
    )
    .min(1, 'must name at least one agent')
    .max(10_000, 'must have at most 10000 items')
    .nullish(),
})
  .superRefine((t, ctx) => {
    const given = (['all', 'labels', 'agents'] as const).filter((k) => t[k] !== undefined && t[k] !== null);
    if (given.length !== 1) {
      ctx.addIssue({ code: 'custom', path: [], message: 'must have exactly one of all, labels or agents' });
    }
  })
  .meta({ description: 'Exactly one of all: true, labels or agents.' });

/** Wave percentages: 1 to 10 whole numbers, increasing, the last 100. */
export const Waves = z
  .array(z.unknown(), { error: 'must be an array of 1 to 10 percentages' })
  .min(1, 'must be an array of 1 to 10 percentages')
  .max(10, 'must be an array of 1 to 10 percentages')
  .superRefine((waves, ctx) => {
    let last = 0;
    for (const p of waves) {
      if (typeof p !== 'number' || !Number.isSafeInteger(p) || p < 1 || p > 100) {
        ctx.addIssue({ code: 'custom', message: 'must hold whole percentages from 1 to 100' });
        return;
      }
      if (p <= last) {
        ctx.addIssue({ code: 'custom', message: 'must increase' });
        return;
      }
      last = p;
    }
    if (last !== 100) ctx.addIssue({ code: 'custom', message: 'must end at 100' });
  })
  .meta({
    type: 'array',
    items: { type: 'integer', minimum: 1, maximum: 100 },
    description: 'Share of the targets reached after each wave, percent, increasing, ending at 100.',
  });

/** The health limits a rollout request or plan may set, each optional. */
const policyFields = {
  healthWindowSec: finite({ min: 0, max: 7 * 86_400 })
    .optional()
    .meta({ description: 'Default 60.' }),
  maxErrorRate: finite({ min: 0, max: 1 }).optional().meta({ description: 'Default 0.01.' }),
  maxP99Ms: finite({ min: 0, exclusiveMin: true, max: 3_600_000 })
    .optional()
    .meta({ description: 'Default 1000.' }),
  minRequests: integer({ min: 0, max: 1_000_000_000 }).optional().meta({ description: 'Default 0.' }),
  failQuorum: finite({ min: 0, max: 1 })
    .optional()
    .meta({ description: 'A wave fails when more than this share of its agents fail. Default 0.5.' }),
};

/** `POST /v1/rollouts`. */
export const RolloutBody = strictBody({
  model: text({ max: 128 }),
  version: integer({ min: 1 }),
  target: RolloutTarget,
  waves: Waves.optional().meta({ description: 'Default [100].' }),
  ...policyFields,
});

/**
 * How a promotion rolls its version out (in a promotion request, a job or a promotion policy):
 * the fields of `POST /v1/rollouts` but model and version, each optional.
 */
export const RolloutPlanBody = strictBody({
  target: RolloutTarget.optional(),
  waves: Waves.optional(),
  ...policyFields,
}).meta({ id: 'RolloutPlan' });

/** A rollout action (pause, resume, rollback) takes no body, or `{}`. */
export const EmptyBody = strictBody({});

const Health = z.object({
  requests: z.number(),
  errors: z.number(),
  errorRate: z.number(),
  p99Ms: z.number().nullable(),
  latency: z.array(z.number()),
});

export const RolloutRecord = z
  .object({
    id: z.string(),
    model: z.string(),
    version: z.int(),
    target: z.union([
      z.object({ all: z.literal(true) }),
      z.object({ labels: z.record(z.string(), z.string()) }),
      z.object({ agents: z.array(z.string()) }),
    ]),
    policy: z.object({
      healthWindowSec: z.number(),
      maxErrorRate: z.number(),
      maxP99Ms: z.number(),
      minRequests: z.int(),
      failQuorum: z.number().optional(),
    }),
    state: z.enum(ROLLOUT_STATE_NAMES),
    currentWave: z.int(),
    waves: z.array(
      z.object({
        percent: z.number(),
        agents: z.array(z.string()),
        state: z.enum(['pending', 'running', 'passed', 'failed']),
        startedAt: z.string().optional(),
        observingSince: z.string().optional(),
        endedAt: z.string().optional(),
        health: Health.optional(),
        note: z.string().optional(),
      }),
    ),
    agents: z
      .array(
        z.object({
          id: z.string(),
          wave: z.int(),
          previousVersion: z.int().nullable(),
          state: z.enum([
            'pending',
            'transferring',
            'verifying',
            'active',
            'failed',
            'rolling-back',
            'rolled-back',
          ]),
          reason: z.string().optional(),
          updatedAt: z.string(),
        }),
      )
      .meta({ description: 'Every agent the rollout reaches, with its wave and state.' }),
    createdAt: z.string(),
    createdBy: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().optional(),
    reason: z.string().optional(),
    retiring: z.int().optional(),
  })
  .meta({ id: 'Rollout' });

export const RolloutList = z.object({ rollouts: z.array(RolloutRecord) });

export const rolloutListFilters = { model: 'string', state: ROLLOUT_STATE_NAMES } as const;

/** `POST /v1/models/:name/versions/:version/retire`. */
export const RetireBody = strictBody({
  successor: integer({ min: 1 }).meta({ description: 'The version the agents move to.' }),
  graceSec: integer({ min: 0, max: 365 * 86_400 })
    .optional()
    .meta({
      description: 'Seconds the retired version still answers, with Deprecation headers (default 7 days).',
    }),
});

export const RetirementRecord = z
  .object({
    model: z.string(),
    version: z.int(),
    successor: z.int(),
    graceSec: z.number(),
    deprecatedAt: z.string(),
    sunsetAt: z.string(),
    retiredBy: z.string(),
    rollout: z.string().nullable(),
  })
  .meta({ id: 'Retirement' });

export const RetirementList = z.object({ retirements: z.array(RetirementRecord) });

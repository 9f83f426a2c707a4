// A version's stage, tags and description, a model's aliases and its promotion policy.
import { z } from 'zod';
import { bool, finite, integer, oneOf, strictBody, text } from './fields.ts';
import { LifecycleView, STAGE_NAMES } from './models.ts';
import { RolloutPlanBody } from './rollouts.ts';

const TAG_KEY = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;

/** `PATCH /v1/models/:name/versions/:version`: description and tags (a null tag removes it). */
export const VersionPatchBody = strictBody({
  description: text({ min: 0, max: 4096 }).optional(),
  tags: z
    .record(z.string().regex(TAG_KEY), text({ min: 0, max: 256 }).nullable(), {
      error: (issue) =>
        issue.code === 'invalid_key' ? `is not a tag key (keys must match ${TAG_KEY})` : 'must be an object',
    })
    .refine((t) => Object.keys(t).length <= 64, 'must have at most 64 entries')
    .optional()
    .meta({ description: 'Tags to set; a null value removes the tag.' }),
}).refine((b) => b.description !== undefined || b.tags !== undefined, {
  message: 'must set description or tags',
});

/** `POST /v1/models/:name/versions/:version/stage`. Forcing needs the admin role and a reason. */
export const StageBody = strictBody({
  stage: oneOf(STAGE_NAMES),
  force: bool().optional().meta({ description: 'Move past the gate or out of retired (admin only).' }),
  reason: text({ max: 1024 })
    .optional()
    .meta({ description: 'Required with force: the audit log records it.' }),
  rollout: RolloutPlanBody.optional().meta({
    description: "Production only: the promotion's rollout plan (else the policy's, then the defaults).",
  }),
});

/** `PUT /v1/models/:name/policy`: the validation gate in front of production. */
export const PolicyBody = strictBody({
  metric: oneOf(['accuracy', 'loss'], 'must be accuracy or loss'),
  min: finite({ min: 0, max: 1 })
    .optional()
    .meta({ description: 'accuracy: the lowest aggregate accepted.' }),
  max: finite({ min: 0 }).optional().meta({ description: 'loss: the highest aggregate accepted.' }),
  maxRegression: finite({ min: 0 })
    .optional()
    .meta({ description: 'Largest worsening against production on the same agents.' }),
  stageOnComplete: oneOf(['none', 'staging'], 'must be none or staging').optional(),
  rollout: RolloutPlanBody.optional().meta({ description: 'The rollout plan of a promotion of this model.' }),
}).superRefine((p, ctx) => {
  if (p.metric === 'accuracy' && p.max !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['max'], message: 'is for loss; an accuracy policy sets min' });
  }
  if (p.metric === 'loss' && p.min !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['min'], message: 'is for accuracy; a loss policy sets max' });
  }
});

export const Policy = z
  .object({
    metric: z.enum(['accuracy', 'loss']),
    min: z.number().optional(),
    max: z.number().optional(),
    maxRegression: z.number().optional(),
    stageOnComplete: z.enum(['none', 'staging']).optional(),
    rollout: RolloutPlanBody.optional(),
  })
  .meta({ id: 'PromotionPolicy' });

/** A stage change's answer: the version's lifecycle and, for a promotion, the rollout it started. */
export const StageChange = LifecycleView.extend({
  rollout: z
    .string()
    .nullable()
    .optional()
    .meta({ description: 'A promotion to production: the rollout it started (null: no agent to reach).' }),
}).meta({ id: 'StageChange' });

export const PolicyResponse = z.object({ policy: Policy.nullable() });

/** `PUT /v1/models/:name/aliases/:alias`. */
export const AliasBody = strictBody({ version: integer({ min: 1 }) });

export const AliasParams = z.object({
  name: z.string().meta({ description: 'Model name.' }),
  alias: z.string().meta({ description: 'Alias (champion, challenger, any name).' }),
});

export const AliasRecord = z
  .object({ alias: z.string(), version: z.int(), updatedAt: z.string(), updatedBy: z.string() })
  .meta({ id: 'Alias' });

export const AliasList = z.object({ aliases: z.array(AliasRecord) });

// Federated evaluations of a version on the sites' hold-out data.
import { z } from 'zod';
import { labelsInput } from './agents.ts';
import { ErrorPair, next } from './common.ts';
import { finite, integer, strictBody } from './fields.ts';

export const EVALUATION_STATE_NAMES = ['running', 'completed', 'failed', 'cancelled'] as const;

/**
 * `POST /v1/models/:name/versions/:version/evaluations`. `agents` names the sites to ask;
 * `labels` asks the sites that carry every given label; neither: every agent online. The
 * coordinator checks that named agents are enrolled and not revoked.
 */
export const EvaluationBody = strictBody({
  agents: z
    .array(
      z
        .string({ error: 'must be an array of strings' })
        .min(1, 'must hold agent ids')
        .max(128, 'must hold agent ids'),
      { error: 'must be an array' },
    )
    .min(1, 'must name at least one agent (or be left out for all)')
    .max(10_000, 'must have at most 10000 items')
    .optional(),
  labels: labelsInput('labels')
    .refine((l) => Object.keys(l).length > 0, 'must name at least one label (or be left out)')
    .optional()
    .meta({ description: 'Ask only agents that carry every one of these labels (instead of agents).' }),
  minClients: integer({ min: 1, max: 100_000 }).optional().meta({ description: 'Default 1.' }),
  timeoutSec: finite({ min: 0, exclusiveMin: true, max: 86_400 })
    .optional()
    .meta({ description: 'Default 120.' }),
}).superRefine((body, ctx) => {
  if (body.agents !== undefined && body.labels !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['labels'],
      message: 'cannot be given together with agents: name the agents, or select them by labels',
    });
  }
  const named = body.agents === undefined ? undefined : new Set(body.agents).size;
  if (named !== undefined && body.minClients !== undefined && body.minClients > named) {
    ctx.addIssue({
      code: 'custom',
      path: ['minClients'],
      message: `must be at most the number of agents named (${named})`,
    });
  }
});

const Aggregate = z
  .object({
    numExamples: z.number(),
    loss: z.number(),
    accuracy: z.number(),
    confusion: z.array(z.array(z.number())),
    weightCap: z
      .number()
      .optional()
      .meta({ description: 'The largest weight one site could have, when capped.' }),
    median: z
      .object({ loss: z.number(), accuracy: z.number() })
      .meta({ description: 'Per metric, the median over sites, each site counting once.' }),
    sites: z.int(),
  })
  .meta({ id: 'EvaluationAggregate' });

const AgentResult = z.looseObject({
  agentId: z.string(),
  numExamples: z.number(),
  weight: z.number().optional().meta({ description: "The site's capped weight in the aggregate." }),
  loss: z.number(),
  accuracy: z.number(),
  confusion: z.array(z.array(z.number())),
  evalMs: z.number(),
  roundTripMs: z.number(),
});

export const EvaluationRequest = z.object({
  agents: z.array(z.string()).optional(),
  labels: z.record(z.string(), z.string()).optional(),
  minClients: z.int(),
  timeoutSec: z.number(),
});

export const EvaluationRecord = z
  .object({
    id: z.string(),
    model: z.string(),
    version: z.int(),
    state: z.enum(EVALUATION_STATE_NAMES),
    request: EvaluationRequest,
    holdoutFraction: z.number(),
    createdAt: z.string(),
    createdBy: z.string(),
    jobId: z.string().optional(),
    round: z.int().optional(),
    finishedAt: z.string().optional(),
    durationMs: z.number().optional(),
    asked: z.array(z.string()),
    results: z.array(AgentResult),
    failures: z.array(z.object({ agentId: z.string(), code: z.string(), reason: z.string() })),
    aggregate: Aggregate.optional(),
    error: ErrorPair.optional(),
  })
  .meta({ id: 'Evaluation' });

export const EvaluationSummary = EvaluationRecord.omit({ results: true, failures: true })
  .extend({ sites: z.int(), failures: z.int() })
  .meta({ id: 'EvaluationSummary' });

const MatrixCell = z.object({
  accuracy: z.number(),
  loss: z.number(),
  numExamples: z.number(),
  evaluationId: z.string(),
  at: z.string(),
});

export const EvaluationMatrix = z
  .object({
    model: z.string(),
    agents: z.array(z.string()),
    versions: z.array(
      z.object({
        version: z.int(),
        evaluationId: z.string(),
        aggregate: Aggregate.optional(),
        agents: z.record(z.string(), MatrixCell),
      }),
    ),
  })
  .meta({ id: 'EvaluationMatrix' });

export const EvaluationList = z.object({
  matrix: EvaluationMatrix,
  evaluations: z.array(EvaluationSummary),
  next,
});

export const evaluationListFilters = { state: EVALUATION_STATE_NAMES, version: 'string' } as const;

// Models, their versions and artifacts.
import { z } from 'zod';
import { parseArchitecture } from '../models/index.ts';
import { HOLDOUT_DEFAULTS } from '../protocol/index.ts';
import { next } from './common.ts';
import { checkedBy, finite, strictBody, text } from './fields.ts';

const shape = z.array(z.int().positive());

/** An architecture as the registry keeps it. */
export const Architecture = z
  .discriminatedUnion('kind', [
    z.object({
      kind: z.literal('mlp'),
      inputShape: shape,
      layers: z
        .array(z.int().positive())
        .meta({ description: 'Units per dense layer; the last is the classes.' }),
      activation: z.enum(['relu', 'tanh', 'sigmoid', 'elu', 'selu', 'linear']),
    }),
    z.object({ kind: z.literal('logistic'), inputShape: shape, classes: z.int().min(2) }),
    z.object({
      kind: z.literal('tfjs'),
      topology: z.record(z.string(), z.unknown()).meta({ description: 'A TensorFlow.js layers topology.' }),
    }),
  ])
  .meta({ id: 'Architecture' });

/** What `POST /v1/models` accepts as `architecture` (`inputs` may stand for `inputShape: [n]`). */
const ArchitectureRequest = z.union([
  z.object({
    kind: z.literal('mlp'),
    inputShape: shape.optional(),
    inputs: z.int().positive().optional(),
    layers: z.array(z.int().positive()).min(1).max(64),
    activation: z.enum(['relu', 'tanh', 'sigmoid', 'elu', 'selu', 'linear']).optional(),
  }),
  z.object({
    kind: z.literal('logistic'),
    inputShape: shape.optional(),
    inputs: z.int().positive().optional(),
    classes: z.int().min(2).max(65_536),
  }),
  z.object({
    kind: z.literal('tfjs'),
    topology: z
      .record(z.string(), z.unknown())
      .meta({ description: 'A model.json, or its modelTopology (class_name and config).' }),
  }),
]);

const { $schema: _drop, ...architectureJson } = z.toJSONSchema(ArchitectureRequest) as Record<
  string,
  unknown
>;

/** `POST /v1/models`. */
export const ModelCreateBody = strictBody({
  name: text({ max: 128 }).meta({ description: 'Model name: letters, digits, ".", "_", "-".' }),
  description: text({ max: 2048 }).optional(),
  architecture: checkedBy(parseArchitecture, {
    ...architectureJson,
    description:
      'An MLP, a logistic regression, or a TensorFlow.js layers topology. Refused with LOOM_ERR_MODEL_SPEC.',
  }),
  weights: text({ max: 512 * 1024 * 1024 })
    .optional()
    .meta({
      description: 'Base64 weights.bin laid out as the tfjs topology weightsManifest says (tfjs only).',
    }),
  holdoutFraction: finite({ min: 0, max: HOLDOUT_DEFAULTS.maxFraction })
    .optional()
    .meta({
      description: `Share of each site's data held out for evaluation (default ${HOLDOUT_DEFAULTS.fraction}).`,
    }),
});

export const ModelRecord = z
  .object({
    name: z.string(),
    description: z.string().optional(),
    architecture: Architecture,
    inputShape: z.array(z.int()),
    classes: z.int(),
    paramCount: z.int(),
    createdAt: z.string(),
    latestVersion: z.int(),
    holdoutFraction: z.number().optional(),
  })
  .meta({ id: 'Model' });

export const VersionRecord = z
  .object({
    model: z.string(),
    version: z.int(),
    parentVersion: z.int().nullable(),
    jobId: z.string().nullable(),
    round: z.int().nullable(),
    agents: z.array(z.string()),
    exampleCounts: z.record(z.string(), z.number()),
    numExamples: z.number(),
    metrics: z.record(z.string(), z.number()),
    createdAt: z.string(),
    sha256: z.string().meta({ description: 'Hex SHA-256 of weights.bin.' }),
    paramCount: z.int(),
  })
  .meta({ id: 'Version' });

export const STAGE_NAMES = ['none', 'staging', 'production', 'archived', 'retired'] as const;

/** A version's lifecycle: stage, tags, description and the aliases that point at it. */
export const LifecycleView = z
  .object({
    stage: z.enum(STAGE_NAMES),
    tags: z.record(z.string(), z.string()),
    description: z.string().optional(),
    stageChangedAt: z.string().optional(),
    stageChangedBy: z.string().optional(),
    aliases: z.array(z.string()),
  })
  .meta({ id: 'Lifecycle' });

/** A version with its lifecycle, as `GET .../versions[/:version]` shows it. */
export const VersionView = VersionRecord.extend(LifecycleView.shape).meta({ id: 'VersionWithLifecycle' });

export const ModelList = z.object({ models: z.array(ModelRecord), next });
export const VersionList = z.object({ versions: z.array(VersionView), next });

export const ModelDetail = ModelRecord.extend({
  deployedVersion: z.int().nullable().meta({ description: 'Version deployed to the agents, if any.' }),
}).meta({ id: 'ModelDetail' });

export const CreatedModel = ModelRecord.extend({ version: VersionRecord }).meta({ id: 'CreatedModel' });

/** A TensorFlow.js model.json whose weights are fetched from `artifact/weights.bin`. */
export const ModelJson = z
  .object({
    format: z.literal('layers-model'),
    generatedBy: z.string(),
    convertedBy: z.null(),
    modelTopology: z.record(z.string(), z.unknown()),
    weightsManifest: z.array(
      z.object({
        paths: z.array(z.string()),
        weights: z.array(
          z.object({ name: z.string(), shape: z.array(z.int()), dtype: z.literal('float32') }),
        ),
      }),
    ),
    userDefinedMetadata: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: 'ModelJson' });

export const versionListFilters = { job: 'string', stage: STAGE_NAMES } as const;

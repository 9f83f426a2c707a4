// Checks on registry input that every registry implementation applies before it writes anything.
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import { HOLDOUT_DEFAULTS } from '../../shared/protocol/index.ts';
import {
  assertMatchesSpecs,
  specsOf,
  type WeightSpec,
  type WeightTensor,
} from '../../shared/tensors/index.ts';
import type { NewModel, NewVersion } from './model-registry.ts';

/** Allowed model names: a letter or digit, then up to 127 letters, digits, dots, underscores or dashes. */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function invalid(message: string, field: string): never {
  throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', message, { details: { field } });
}

/** Throws LOOM_ERR_INVALID_ARGUMENT unless `name` matches `MODEL_NAME_PATTERN`. */
export function assertModelName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !MODEL_NAME_PATTERN.test(name)) {
    invalid(`model name ${JSON.stringify(name)} must match ${MODEL_NAME_PATTERN}`, 'name');
  }
}

/** Throws LOOM_ERR_INVALID_ARGUMENT unless `version` is a positive integer. */
export function assertVersionNumber(version: unknown, field = 'version'): asserts version is number {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    invalid(`${field} must be a positive integer, got ${String(version)}`, field);
  }
}

/**
 * Checks `weights` against `specs` (or against their own shapes when `specs` is omitted), turning
 * the tensor module's LOOM_ERR_TENSOR into LOOM_ERR_INVALID_ARGUMENT: here a mismatch is bad input.
 */
export function assertWeights(weights: readonly WeightTensor[], specs?: readonly WeightSpec[]): void {
  if (!Array.isArray(weights) || weights.length === 0)
    invalid('weights must be a non-empty array', 'weights');
  try {
    assertMatchesSpecs(specs ?? specsOf(weights), weights);
  } catch (err) {
    if (isLoomError(err, 'LOOM_ERR_TENSOR')) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `weights do not match the model: ${err.message}`, {
        cause: err,
        details: { field: 'weights' },
      });
    }
    throw err;
  }
}

function assertPositiveInts(value: unknown, field: string): void {
  if (!Array.isArray(value) || value.length === 0 || !value.every((d) => Number.isSafeInteger(d) && d > 0)) {
    invalid(`${field} must be a non-empty array of positive integers`, field);
  }
}

/** Field checks of `createModel` input other than the weights' own consistency. */
export function assertNewModel(m: NewModel): void {
  assertModelName(m.name);
  if (m.description !== undefined && typeof m.description !== 'string') {
    invalid('description must be a string', 'description');
  }
  if (m.architecture === null || typeof m.architecture !== 'object') {
    invalid('architecture must be an object', 'architecture');
  }
  assertPositiveInts(m.inputShape, 'inputShape');
  if (!Number.isSafeInteger(m.classes) || m.classes < 1)
    invalid('classes must be a positive integer', 'classes');
  if (
    m.holdoutFraction !== undefined &&
    !(
      typeof m.holdoutFraction === 'number' &&
      m.holdoutFraction >= 0 &&
      m.holdoutFraction <= HOLDOUT_DEFAULTS.maxFraction
    )
  ) {
    invalid(`holdoutFraction must be a number from 0 to ${HOLDOUT_DEFAULTS.maxFraction}`, 'holdoutFraction');
  }
  assertWeights(m.weights);
}

/** The share of each site's data a model holds out for evaluation (its own, or the default). */
export function holdoutFractionOf(model: { holdoutFraction?: number }): number {
  return model.holdoutFraction ?? HOLDOUT_DEFAULTS.fraction;
}

function assertNullableInt(value: unknown, field: string, min: number): void {
  if (value === null) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    invalid(`${field} must be null or an integer of at least ${min}`, field);
  }
}

/**
 * Field checks of `addVersion` input that need no stored state: lineage fields, agent list,
 * example counts (non-negative integers) and metrics (finite numbers). The weights are checked
 * against the model's specs separately.
 */
export function assertNewVersionFields(v: NewVersion): void {
  assertModelName(v.model);
  assertNullableInt(v.parentVersion, 'parentVersion', 1);
  if (v.jobId !== null && (typeof v.jobId !== 'string' || v.jobId.length === 0)) {
    invalid('jobId must be null or a non-empty string', 'jobId');
  }
  assertNullableInt(v.round, 'round', 0);
  if (!Array.isArray(v.agents) || !v.agents.every((a) => typeof a === 'string' && a.length > 0)) {
    invalid('agents must be an array of non-empty strings', 'agents');
  }
  if (v.exampleCounts === null || typeof v.exampleCounts !== 'object') {
    invalid('exampleCounts must be an object', 'exampleCounts');
  }
  for (const [agent, count] of Object.entries(v.exampleCounts)) {
    if (!Number.isSafeInteger(count) || count < 0) {
      invalid(`exampleCounts.${agent} must be a non-negative integer`, 'exampleCounts');
    }
  }
  if (v.metrics === null || typeof v.metrics !== 'object') invalid('metrics must be an object', 'metrics');
  for (const [metric, value] of Object.entries(v.metrics)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      invalid(`metrics.${metric} must be a finite number`, 'metrics');
    }
  }
}

/** Sum of the per-agent example counts. */
export function totalExamples(exampleCounts: Record<string, number>): number {
  let total = 0;
  for (const count of Object.values(exampleCounts)) total += count;
  return total;
}

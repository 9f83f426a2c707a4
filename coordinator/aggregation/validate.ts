// Checks shared by both engines: the update's structure and weight, and the aggregator's inputs.
import { LoomError } from '../../shared/errors/index.ts';
import { sizeOf, type WeightSpec, type WeightTensor } from '../../shared/tensors/index.ts';
import type { AggregatorOptions, RejectionReason } from './types.ts';

/** The error every refused update is thrown as; `tensor` names the offending tensor, if one. */
export function rejection(reason: RejectionReason, message: string, tensor?: string): LoomError {
  const details: Record<string, unknown> = { reason };
  if (tensor !== undefined) details.tensor = tensor;
  return new LoomError('LOOM_ERR_UPDATE_REJECTED', message, { details });
}

/**
 * Everything both engines check before they read an update's values: the aggregate is still open
 * (average() closes it), the weight is usable, and the tensors match the specs.
 */
export function checkFoldable(
  closed: boolean,
  specs: readonly WeightSpec[],
  update: readonly WeightTensor[],
  weight: number,
): void {
  if (closed) throw unusable('average() has closed this aggregate; make a new aggregator');
  checkWeight(weight);
  checkStructure(specs, update);
}

/** Throws reason 'weight' unless `weight` is a finite number > 0 that float32 can hold. */
export function checkWeight(weight: number): void {
  // Both engines multiply in float32: a weight past its range would fold Infinity, one below it zero.
  const asFloat32 = Math.fround(weight);
  if (typeof weight !== 'number' || !Number.isFinite(asFloat32) || asFloat32 <= 0) {
    throw rejection('weight', `update weight must be a finite number > 0, got ${String(weight)}`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (!Array.isArray(a) || a.length !== b.length) return false;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Throws a rejection unless `update` has the specs' tensors in order with the same names, shapes
 * and float32 data. A wrong number of tensors counts as reason 'shape'. Values are not read.
 */
export function checkStructure(specs: readonly WeightSpec[], update: readonly WeightTensor[]): void {
  if (!Array.isArray(update) || update.length !== specs.length) {
    const got = Array.isArray(update) ? update.length : 'no array of';
    throw rejection('shape', `update has ${got} tensors, expected ${specs.length}`);
  }
  for (let i = 0; i < specs.length; i++) {
    const s = specs[i];
    const t = update[i];
    if (t === null || typeof t !== 'object' || t.name !== s.name) {
      throw rejection('name', `tensor ${i} is named "${String(t?.name)}", expected "${s.name}"`, s.name);
    }
    if (t.dtype !== 'float32' || !(t.data instanceof Float32Array)) {
      throw rejection('dtype', `tensor "${s.name}" must hold float32 data`, s.name);
    }
    if (!sameShape(t.shape, s.shape) || t.data.length !== sizeOf(s.shape)) {
      throw rejection(
        'shape',
        `tensor "${s.name}" has shape [${String(t.shape)}] and ${t.data.length} values, expected [${s.shape}]`,
        s.name,
      );
    }
  }
}

/** Validates the specs an aggregator is made for and returns a private copy of them. */
export function copySpecs(specs: readonly WeightSpec[]): WeightSpec[] {
  if (!Array.isArray(specs)) throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'specs must be an array');
  return specs.map((s, i) => {
    if (s === null || typeof s !== 'object' || typeof s.name !== 'string' || s.name.length === 0) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `spec ${i} has no name`);
    }
    if (s.dtype !== 'float32') {
      throw new LoomError(
        'LOOM_ERR_INVALID_ARGUMENT',
        `spec "${s.name}" has dtype ${String(s.dtype)}, not float32`,
      );
    }
    if (!Array.isArray(s.shape) || !s.shape.every((d: number) => Number.isSafeInteger(d) && d >= 0)) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `spec "${s.name}" has an invalid shape`);
    }
    return { name: s.name, shape: [...s.shape], dtype: 'float32' };
  });
}

/** Validates options and returns the norm bound (Infinity when unbounded). */
export function maxNormOf(options: AggregatorOptions = {}): number {
  const { maxNorm } = options;
  if (maxNorm === undefined) return Number.POSITIVE_INFINITY;
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm) || maxNorm <= 0) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `maxNorm must be a number > 0, got ${String(maxNorm)}`);
  }
  return maxNorm;
}

/** True when some value of `update` is NaN or ±Infinity (x - x is 0 for every finite x). */
export function hasNonFinite(update: readonly WeightTensor[]): boolean {
  for (const t of update) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) if (d[i] - d[i] !== 0) return true;
  }
  return false;
}

/** The rejection for an update holding NaN or Infinity, naming the first tensor that does. */
export function nonFiniteRejection(update: readonly WeightTensor[]): LoomError {
  // Only scanned once an engine has found a bad value, so the fast path never pays for it.
  const bad = update.find((t) => hasNonFinite([t]));
  return rejection('non-finite', `tensor "${bad?.name}" holds NaN or Infinity`, bad?.name);
}

/** Throws reason 'norm' when the update's L2 norm exceeds the bound. */
export function checkNorm(norm: number, maxNorm: number): void {
  if (norm > maxNorm) {
    throw rejection('norm', `update L2 norm ${norm.toPrecision(6)} exceeds the bound ${maxNorm}`);
  }
}

/** The rejection for an update whose weighted values would make the float32 sum overflow. */
export function overflowRejection(weight: number): LoomError {
  return rejection(
    'overflow',
    `the update's values times its weight ${weight} would overflow the float32 sum (values too large)`,
  );
}

/** Validates a clip norm option and returns it (Infinity when none). */
export function clipNormOf(clipNorm: number | undefined): number {
  if (clipNorm === undefined) return Number.POSITIVE_INFINITY;
  if (typeof clipNorm !== 'number' || Number.isNaN(clipNorm) || clipNorm <= 0) {
    throw new TypeError(`clipNorm must be a number > 0, got ${String(clipNorm)}`);
  }
  return clipNorm;
}

/** The error for using an aggregator before anything was folded or after it was disposed. */
export function unusable(what: string): LoomError {
  return new LoomError('LOOM_ERR_INVALID_ARGUMENT', what);
}

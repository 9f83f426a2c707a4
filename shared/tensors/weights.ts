// In-memory model weights: ordered named float32 tensors, and checks between them.
import { LoomError } from '../errors/index.ts';

export type DType = 'float32';

/** The name, shape and dtype of one weight tensor, without its values. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: DType;
}

/** One weight tensor with its values (row-major, float32). */
export interface WeightTensor extends WeightSpec {
  data: Float32Array;
}

/** Number of elements of a shape (1 for a scalar). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Total number of parameters in a list of specs or tensors. */
export function countParams(specs: readonly WeightSpec[]): number {
  let n = 0;
  for (const s of specs) n += sizeOf(s.shape);
  return n;
}

export function specsOf(weights: readonly WeightTensor[]): WeightSpec[] {
  return weights.map(({ name, shape, dtype }) => ({ name, shape: [...shape], dtype }));
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Checks that `weights` match `specs` one for one: same order, names, shapes, dtypes and
 * element counts. Throws LOOM_ERR_TENSOR naming the first mismatch.
 */
export function assertMatchesSpecs(specs: readonly WeightSpec[], weights: readonly WeightTensor[]): void {
  if (weights.length !== specs.length) {
    throw new LoomError('LOOM_ERR_TENSOR', `expected ${specs.length} tensors, got ${weights.length}`);
  }
  for (let i = 0; i < specs.length; i++) {
    const s = specs[i];
    const w = weights[i];
    if (w.name !== s.name) {
      throw new LoomError('LOOM_ERR_TENSOR', `tensor ${i} is named "${w.name}", expected "${s.name}"`);
    }
    if (w.dtype !== s.dtype) {
      throw new LoomError('LOOM_ERR_TENSOR', `tensor "${s.name}" has dtype ${w.dtype}, expected ${s.dtype}`);
    }
    if (!sameShape(w.shape, s.shape)) {
      throw new LoomError(
        'LOOM_ERR_TENSOR',
        `tensor "${s.name}" has shape [${w.shape}], expected [${s.shape}]`,
      );
    }
    if (w.data.length !== sizeOf(s.shape)) {
      throw new LoomError(
        'LOOM_ERR_TENSOR',
        `tensor "${s.name}" has ${w.data.length} values, its shape needs ${sizeOf(s.shape)}`,
      );
    }
  }
}

/** Elementwise `a - b` (the update an agent sends is its trained weights minus the global ones). */
export function subtractWeights(a: readonly WeightTensor[], b: readonly WeightTensor[]): WeightTensor[] {
  assertMatchesSpecs(specsOf(a), b);
  return a.map((t, i) => {
    const out = new Float32Array(t.data.length);
    const bd = b[i].data;
    for (let j = 0; j < out.length; j++) out[j] = t.data[j] - bd[j];
    return { name: t.name, shape: [...t.shape], dtype: t.dtype, data: out };
  });
}

/** Elementwise `a + b`. */
export function addWeights(a: readonly WeightTensor[], b: readonly WeightTensor[]): WeightTensor[] {
  assertMatchesSpecs(specsOf(a), b);
  return a.map((t, i) => {
    const out = new Float32Array(t.data.length);
    const bd = b[i].data;
    for (let j = 0; j < out.length; j++) out[j] = t.data[j] + bd[j];
    return { name: t.name, shape: [...t.shape], dtype: t.dtype, data: out };
  });
}

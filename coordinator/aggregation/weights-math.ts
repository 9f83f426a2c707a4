// Whole-model arithmetic around aggregation: the server step and update norms.
import { LoomError } from '../../shared/errors/index.ts';
import { assertMatchesSpecs, specsOf, type WeightTensor } from '../../shared/tensors/index.ts';

/**
 * FedAvg server step: `global + serverLearningRate * averageDelta`, as new float32 tensors.
 * `serverLearningRate` defaults to 1 (plain FedAvg). Throws LOOM_ERR_TENSOR when the two lists
 * do not match one for one, and LOOM_ERR_INVALID_ARGUMENT for a non-finite learning rate.
 */
export function applyAverageDelta(
  global: readonly WeightTensor[],
  averageDelta: readonly WeightTensor[],
  serverLearningRate = 1,
): WeightTensor[] {
  if (typeof serverLearningRate !== 'number' || !Number.isFinite(serverLearningRate)) {
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      `serverLearningRate must be a finite number, got ${String(serverLearningRate)}`,
    );
  }
  assertMatchesSpecs(specsOf(global), averageDelta);
  return global.map((g, t) => {
    const base = g.data;
    const delta = averageDelta[t].data;
    const out = new Float32Array(base.length);
    for (let i = 0; i < out.length; i++) out[i] = base[i] + serverLearningRate * delta[i];
    return { name: g.name, shape: [...g.shape], dtype: 'float32', data: out };
  });
}

/** L2 norm over all values of all tensors, summed in float64. */
export function l2Norm(weights: readonly WeightTensor[]): number {
  let squares = 0;
  for (const w of weights) {
    const d = w.data;
    for (let i = 0; i < d.length; i++) squares += d[i] * d[i];
  }
  return Math.sqrt(squares);
}

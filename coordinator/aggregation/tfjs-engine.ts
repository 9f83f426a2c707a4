// The tensor engine: running sums as tfjs tensors, so folding runs on whatever backend initCompute chose.
import * as tf from '@tensorflow/tfjs';
import type { WeightSpec, WeightTensor } from '../../shared/tensors/index.ts';
import type { AggregationEngine, Aggregator, AggregatorOptions } from './types.ts';
import {
  checkFoldable,
  checkNorm,
  copySpecs,
  hasNonFinite,
  maxNormOf,
  nonFiniteRejection,
  unusable,
} from './validate.ts';
import { l2Norm } from './weights-math.ts';

class TfjsAggregator implements Aggregator {
  readonly #specs: WeightSpec[];
  readonly #maxNorm: number;
  #sums: tf.Tensor[] | undefined;
  #count = 0;
  #closed = false;
  #totalWeight = 0;

  constructor(specs: readonly WeightSpec[], options?: AggregatorOptions) {
    this.#specs = copySpecs(specs);
    this.#maxNorm = maxNormOf(options);
    this.#sums = this.#specs.map((s) => tf.zeros(s.shape, 'float32'));
  }

  get count(): number {
    return this.#count;
  }

  get totalWeight(): number {
    return this.#totalWeight;
  }

  #live(): tf.Tensor[] {
    if (!this.#sums) throw unusable('aggregator has been disposed');
    return this.#sums;
  }

  fold(update: readonly WeightTensor[], weight: number): void {
    const sums = this.#live();
    checkFoldable(this.#closed, this.#specs, update, weight);
    const bounded = Number.isFinite(this.#maxNorm);
    const candidates: tf.Tensor[] = [];
    const checks: tf.Tensor[] = [];
    let committed = false;
    try {
      // One tidy per tensor frees each update copy before the next one is uploaded.
      for (let i = 0; i < sums.length; i++) {
        const [candidate, check] = tf.tidy(() => {
          const u = tf.tensor(update[i].data, this.#specs[i].shape, 'float32');
          // One pass instead of isFinite + all: a NaN or ±Infinity makes the sum non-finite. So can
          // a float32 overflow, which the check after the read-back tells apart.
          const total = tf.sum(u);
          const squares = bounded ? tf.sum(tf.square(u)) : tf.scalar(0);
          return [tf.add(sums[i], tf.mul(u, weight)), tf.stack([total, squares])];
        });
        candidates.push(candidate);
        checks.push(check);
      }
      // A single read-back decides the fold.
      const totals = tf.tidy(() => tf.addN(checks));
      const [valueSum, squareSum] = totals.dataSync();
      totals.dispose();
      // Rare path: tell a real NaN/Infinity from a float32 overflow by reading the values.
      if (!Number.isFinite(valueSum) && hasNonFinite(update)) throw nonFiniteRejection(update);
      if (bounded) {
        // An overflowed float32 square sum is recomputed in float64 rather than taken as Infinity.
        checkNorm(Number.isFinite(squareSum) ? Math.sqrt(squareSum) : l2Norm(update), this.#maxNorm);
      }
      for (let i = 0; i < sums.length; i++) {
        sums[i].dispose();
        sums[i] = candidates[i];
      }
      committed = true;
    } finally {
      tf.dispose(checks);
      if (!committed) tf.dispose(candidates);
    }
    this.#count += 1;
    this.#totalWeight += weight;
  }

  average(): WeightTensor[] {
    const sums = this.#live();
    if (this.#count === 0) throw unusable('no updates folded');
    this.#closed = true;
    return this.#specs.map((spec, i) => {
      const mean = tf.div(sums[i], this.#totalWeight);
      try {
        // Copied, because some backends hand back their own storage from dataSync.
        const data = new Float32Array(mean.dataSync());
        return { name: spec.name, shape: [...spec.shape], dtype: 'float32', data };
      } finally {
        mean.dispose();
      }
    });
  }

  dispose(): void {
    if (this.#sums) tf.dispose(this.#sums);
    this.#sums = undefined;
  }
}

/**
 * The tfjs engine: one tensor per weight on the active backend (GPU with tfjs-node-gpu). Call
 * `initCompute()` from shared/compute first, or tfjs falls back to its default backend.
 */
export const tfjsEngine: AggregationEngine = {
  name: 'tfjs',
  createAggregator: (specs, options) => new TfjsAggregator(specs, options),
};

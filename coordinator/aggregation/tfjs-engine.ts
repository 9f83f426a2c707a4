// The tensor engine: running sums as tfjs tensors, so folding runs on whatever backend initCompute chose.
import * as tf from '@tensorflow/tfjs';
import type { WeightSpec, WeightTensor } from '../../shared/tensors/index.ts';
import type { AggregationEngine, Aggregator, AggregatorOptions, FoldOptions, FoldReport } from './types.ts';
import {
  checkFoldable,
  checkNorm,
  clipNormOf,
  copySpecs,
  hasNonFinite,
  maxNormOf,
  nonFiniteRejection,
  overflowRejection,
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

  fold(update: readonly WeightTensor[], weight: number, options: FoldOptions = {}): FoldReport {
    const sums = this.#live();
    checkFoldable(this.#closed, this.#specs, update, weight);
    const clip = clipNormOf(options.clipNorm);
    const uploaded = this.#upload(update);
    const candidates: tf.Tensor[] = [];
    let committed = false;
    try {
      const norm = this.#norm(update, uploaded);
      checkNorm(norm, this.#maxNorm);
      const scale = norm > clip ? clip / norm : 1;
      const checks: tf.Tensor[] = [];
      try {
        for (let i = 0; i < sums.length; i++) {
          const [candidate, finite] = tf.tidy(() => {
            const next = tf.add(sums[i], tf.mul(uploaded[i], weight * scale));
            return [next, tf.all(tf.isFinite(next)).toFloat()];
          });
          candidates.push(candidate);
          checks.push(finite);
        }
        // A single read-back decides the fold: every tensor of the new sum must be finite.
        const allFinite = tf.tidy(() => tf.min(tf.stack(checks)));
        const [ok] = allFinite.dataSync();
        allFinite.dispose();
        if (ok !== 1) throw overflowRejection(weight * scale);
      } finally {
        tf.dispose(checks);
      }
      for (let i = 0; i < sums.length; i++) {
        sums[i].dispose();
        sums[i] = candidates[i];
      }
      committed = true;
      this.#count += 1;
      this.#totalWeight += weight;
      return { norm, scale };
    } finally {
      tf.dispose(uploaded);
      if (!committed) tf.dispose(candidates);
    }
  }

  measure(update: readonly WeightTensor[]): number {
    this.#live();
    checkFoldable(this.#closed, this.#specs, update, 1);
    const uploaded = this.#upload(update);
    try {
      const norm = this.#norm(update, uploaded);
      checkNorm(norm, this.#maxNorm);
      return norm;
    } finally {
      tf.dispose(uploaded);
    }
  }

  #upload(update: readonly WeightTensor[]): tf.Tensor[] {
    return update.map((t, i) => tf.tensor(t.data, this.#specs[i].shape, 'float32'));
  }

  /** L2 norm on the backend; rejects NaN or Infinity, and redoes a float32 overflow in float64. */
  #norm(update: readonly WeightTensor[], uploaded: readonly tf.Tensor[]): number {
    const total = tf.tidy(() => tf.addN(uploaded.map((u) => tf.sum(tf.square(u)))));
    const [squares] = total.dataSync();
    total.dispose();
    if (Number.isFinite(squares)) return Math.sqrt(squares);
    // Rare path: tell a real NaN/Infinity from squares too large for float32 by reading the values.
    if (hasNonFinite(update)) throw nonFiniteRejection(update);
    return l2Norm(update);
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

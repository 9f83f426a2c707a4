// Evaluates a model version on the site's hold-out data and returns only aggregate figures: loss,
// accuracy, the confusion matrix and the example count. Raw samples never leave this module.
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../../shared/errors/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { buildModel, modelSignature, writeWeights } from '../../shared/models/index.ts';
import { sizeOf, type WeightTensor } from '../../shared/tensors/index.ts';
import { assertDatasetFits, type LocalDataset } from '../data/index.ts';

export interface LocalEvaluationResult {
  numExamples: number;
  /** Mean categorical cross-entropy. */
  loss: number;
  accuracy: number;
  /** `confusion[t][p]`: examples of true class t predicted as p. */
  confusion: number[][];
  evalMs: number;
}

export interface EvaluateLocallyOptions {
  architecture: ModelArchitecture;
  weights: WeightTensor[];
  /** The hold-out part of the local data. */
  dataset: LocalDataset;
  /** Examples per forward pass. Default 256. */
  batchSize?: number;
  /** Aborting stops between batches with LOOM_ERR_JOB_CANCELLED. Default: none. */
  signal?: AbortSignal;
}

/**
 * Runs the model over the hold-out examples in batches (yielding to the event loop between them).
 * Throws LOOM_ERR_DATA when the data does not fit the model or holds no examples.
 */
export async function evaluateLocally(opts: EvaluateLocallyOptions): Promise<LocalEvaluationResult> {
  const started = Date.now();
  const model = await buildModel(opts.architecture);
  try {
    const { inputShape, classes } = modelSignature(model);
    assertDatasetFits(opts.dataset, inputShape, classes);
    const { dataset } = opts;
    if (dataset.count === 0) {
      throw new LoomError('LOOM_ERR_DATA', `${dataset.source} holds no examples to evaluate on`);
    }
    writeWeights(model, opts.weights);
    const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
    const features = sizeOf(inputShape);
    const batchSize = opts.batchSize ?? 256;
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < dataset.count; start += batchSize) {
      if (opts.signal?.aborted) throw new LoomError('LOOM_ERR_JOB_CANCELLED', 'evaluation task cancelled');
      const n = Math.min(batchSize, dataset.count - start);
      const labels = dataset.labels.subarray(start, start + n);
      const [predicted, batchLoss] = tf.tidy(() => {
        const xs = tf.tensor(dataset.x.subarray(start * features, (start + n) * features), [
          n,
          ...inputShape,
        ]);
        const probs = model.predict(xs) as tf.Tensor2D;
        const ys = tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), classes);
        // Cross-entropy of the probabilities, clipped so one confident miss stays finite.
        const loss = tf.neg(tf.sum(tf.mul(ys, tf.log(probs.clipByValue(1e-7, 1)))));
        return [probs.argMax(1).dataSync() as Int32Array, loss.dataSync()[0]];
      });
      for (let i = 0; i < n; i++) {
        confusion[labels[i]][predicted[i]]++;
        if (labels[i] === predicted[i]) correct++;
      }
      lossSum += batchLoss;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return {
      numExamples: dataset.count,
      loss: lossSum / dataset.count,
      accuracy: correct / dataset.count,
      confusion,
      evalMs: Date.now() - started,
    };
  } finally {
    model.dispose();
  }
}

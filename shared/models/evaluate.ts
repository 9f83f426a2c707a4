// Accuracy and loss of a classifier on a labelled set, in batches, without leaking tensors.
import * as tf from '@tensorflow/tfjs';
import { sizeOf } from '../tensors/index.ts';

export interface Evaluation {
  accuracy: number;
  loss: number;
  count: number;
}

/**
 * Evaluates `model` on `x` (count × features, flattened) with integer `labels`.
 * `batchSize` default 1000.
 */
export function evaluateClassifier(
  model: tf.LayersModel,
  x: Float32Array,
  labels: Int32Array | Uint8Array,
  inputShape: number[],
  batchSize = 1000,
): Evaluation {
  const features = sizeOf(inputShape);
  const count = labels.length;
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const [batchCorrect, batchLoss] = tf.tidy(() => {
      const xs = tf.tensor(x.subarray(start * features, (start + n) * features), [n, ...inputShape]);
      const probs = model.predict(xs) as tf.Tensor2D;
      const ys = tf.tensor1d(Int32Array.from(labels.subarray(start, start + n)), 'int32');
      const hits = probs.argMax(1).equal(ys).sum();
      const classes = probs.shape[1];
      const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(ys, classes), tf.log(probs.clipByValue(1e-7, 1)));
      // softmaxCrossEntropy on log-probabilities equals the categorical cross-entropy of probs.
      return [hits.dataSync()[0], loss.dataSync()[0] * n];
    });
    correct += batchCorrect;
    lossSum += batchLoss;
  }
  return { accuracy: count ? correct / count : 0, loss: count ? lossSum / count : 0, count };
}

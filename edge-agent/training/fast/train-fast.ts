// Epochs of SGD on the fast path, in the thread that calls it: the loop `model.fit` runs
// (shuffled order per epoch, batches in order, the last one short), over a FusedNet.
import { LoomError } from '../../../shared/errors/index.ts';
import type { TrainHyperParameters } from '../../../shared/protocol/index.ts';
import { FusedNet } from './fused-net.ts';
import type { TrainingPlan } from './plan.ts';

export interface FastTrainingInput {
  plan: TrainingPlan;
  /** The starting weights in the model's order (kernel then bias per layer). */
  weights: readonly { data: Float32Array }[];
  /** `count` examples of `plan.inputs` floats each, and their labels. */
  x: Float32Array;
  labels: ArrayLike<number>;
  count: number;
  hyper: TrainHyperParameters;
  /** Shuffle the examples each epoch, as `model.fit` does. Default true. */
  shuffle?: boolean;
  /** Checked after every batch; when it says stop, training ends with LOOM_ERR_JOB_CANCELLED. */
  shouldStop?: () => boolean;
  /** Called after every batch (a worker posts progress or yields). Default: none. */
  onBatch?: () => void | Promise<void>;
}

export interface FastTrainingOutput {
  /** The trained weights in the model's order. */
  weights: Float32Array[];
  /** Of the last epoch, as `model.fit`'s history: mean loss and accuracy. */
  metrics: { loss: number; accuracy: number };
}

/** Fisher–Yates with Math.random, as TensorFlow.js shuffles fit's indices. */
function shuffled(count: number): Int32Array {
  const order = Int32Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** Trains `hyper.epochs` epochs of plain SGD from `weights`; see FastTrainingInput. */
export async function trainFast(input: FastTrainingInput): Promise<FastTrainingOutput> {
  const { hyper, count } = input;
  const batch = Math.max(1, Math.min(hyper.batchSize, count));
  const net = new FusedNet(input.plan, batch);
  net.setWeights(input.weights);
  const metrics = { loss: Number.NaN, accuracy: Number.NaN };
  for (let epoch = 0; epoch < hyper.epochs; epoch++) {
    const order = input.shuffle === false ? Int32Array.from({ length: count }, (_, i) => i) : shuffled(count);
    let lossSum = 0;
    let correct = 0;
    for (let from = 0; from < count; from += batch) {
      const rows = Math.min(batch, count - from);
      const step = net.step(input.x, input.labels, order, from, rows, hyper.learningRate);
      lossSum += step.lossSum;
      correct += step.correct;
      if (input.shouldStop?.()) throw new LoomError('LOOM_ERR_JOB_CANCELLED', 'training task cancelled');
      await input.onBatch?.();
    }
    metrics.loss = lossSum / count;
    metrics.accuracy = correct / count;
  }
  return { weights: net.getWeights(), metrics };
}

// Trains the global model on the site's local data with TensorFlow.js and returns only the
// weight delta, the example count and local metrics. Raw samples never leave this module.
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../../shared/errors/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { buildModel, modelSignature, readWeights, writeWeights } from '../../shared/models/index.ts';
import type { TrainHyperParameters } from '../../shared/protocol/index.ts';
import { subtractWeights, type WeightTensor } from '../../shared/tensors/index.ts';
import { assertDatasetFits, type LocalDataset } from '../data/index.ts';

export interface LocalTrainingResult {
  update: WeightTensor[];
  numExamples: number;
  metrics: Record<string, number>;
  trainMs: number;
}

export interface TrainLocallyOptions {
  architecture: ModelArchitecture;
  global: WeightTensor[];
  dataset: LocalDataset;
  hyper: TrainHyperParameters;
  /**
   * Aborting stops training at the end of the batch in progress and rejects with
   * LOOM_ERR_JOB_CANCELLED (a cancelled task). Default: none, training runs to the end.
   */
  signal?: AbortSignal;
  /** Keeps the dataset's tensors between rounds; without one they are made and freed per call. */
  cache?: TrainingDataCache;
}

/**
 * Dataset tensors kept across rounds: uploading 60k samples to the backend every round is waste.
 * One per agent, so two agents in one process never free each other's tensors mid-training.
 */
export class TrainingDataCache {
  private cached?: { key: string; xs: tf.Tensor; ys: tf.Tensor };

  get(dataset: LocalDataset, inputShape: number[], classes: number): { xs: tf.Tensor; ys: tf.Tensor } {
    const key = `${dataset.source}|${dataset.count}|${inputShape.join('x')}|${classes}`;
    if (this.cached?.key === key) return this.cached;
    this.dispose();
    const xs = tf.tensor(dataset.x, [dataset.count, ...inputShape], 'float32');
    const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(dataset.labels, 'int32'), classes).toFloat());
    this.cached = { key, xs, ys };
    return this.cached;
  }

  dispose(): void {
    if (this.cached) tf.dispose([this.cached.xs, this.cached.ys]);
    this.cached = undefined;
  }
}

/** Lets timers and sockets run: without it a training of many short epochs holds the event loop. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function cancelled(): LoomError {
  return new LoomError('LOOM_ERR_JOB_CANCELLED', 'training task cancelled');
}

/**
 * Trains `epochs` passes of plain SGD from the global weights on the local dataset and returns
 * `local − global`. Throws LOOM_ERR_DATA when the data does not fit the model and
 * LOOM_ERR_JOB_CANCELLED when `opts.signal` aborts (checked after every batch). Without
 * `opts.cache` the dataset tensors are made and freed per call.
 */
export async function trainLocally(opts: TrainLocallyOptions): Promise<LocalTrainingResult> {
  const started = Date.now();
  const model = await buildModel(opts.architecture);
  let tensorsOwner: TrainingDataCache | undefined;
  // A model does not dispose an optimizer it was handed (only one it made from a name).
  const optimizer = tf.train.sgd(opts.hyper.learningRate);
  try {
    if (opts.signal?.aborted) throw cancelled();
    const { inputShape, classes } = modelSignature(model);
    assertDatasetFits(opts.dataset, inputShape, classes);
    if (opts.dataset.count === 0)
      throw new LoomError('LOOM_ERR_DATA', `${opts.dataset.source} holds no examples`);
    writeWeights(model, opts.global);
    model.compile({
      optimizer,
      loss: 'categoricalCrossentropy',
      metrics: ['accuracy'],
    });
    const cache = opts.cache ?? new TrainingDataCache();
    tensorsOwner = opts.cache ? undefined : cache;
    const { xs, ys } = cache.get(opts.dataset, inputShape, classes);
    const metrics: Record<string, number> = {};
    const { signal } = opts;
    // fit gives the event loop a turn after every batch (yieldEvery 'batch', which needs a
    // callback), so heartbeats and a cancel frame are answered within one batch of work, however
    // long an epoch runs; between epochs the loop below yields too.
    const callbacks = {
      onBatchEnd: (): void => {
        if (signal?.aborted) model.stopTraining = true;
      },
    };
    for (let epoch = 0; epoch < opts.hyper.epochs; epoch++) {
      if (epoch > 0) {
        await yieldToEventLoop();
        if (signal?.aborted) throw cancelled();
      }
      const history = await model.fit(xs, ys, {
        epochs: 1,
        batchSize: opts.hyper.batchSize,
        shuffle: true,
        verbose: 0,
        callbacks,
        yieldEvery: 'batch',
      });
      if (signal?.aborted) throw cancelled();
      for (const [k, v] of Object.entries(history.history)) {
        const value = Number(v[v.length - 1]);
        metrics[k === 'acc' ? 'accuracy' : k] = value;
      }
    }
    const local = readWeights(model);
    const update = subtractWeights(local, opts.global);
    return { update, numExamples: opts.dataset.count, metrics, trainMs: Date.now() - started };
  } finally {
    model.dispose();
    optimizer.dispose();
    tensorsOwner?.dispose();
  }
}

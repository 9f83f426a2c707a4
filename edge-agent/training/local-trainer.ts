// Trains the global model on the site's local data and returns only the weight delta, the example
// count and local metrics. Raw samples never leave this module. The fast path (WebAssembly SIMD
// kernels on worker threads) trains the models it has kernels for unless a native TensorFlow
// package is installed; TensorFlow.js's model.fit trains the rest, with the same numbers.
import * as tf from '@tensorflow/tfjs';
import { currentBackend } from '../../shared/compute/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import {
  buildModel,
  modelSignature,
  modelWeightSpecs,
  readWeights,
  writeWeights,
} from '../../shared/models/index.ts';
import type { TrainHyperParameters } from '../../shared/protocol/index.ts';
import { assertMatchesSpecs, subtractWeights, type WeightTensor } from '../../shared/tensors/index.ts';
import { assertDatasetFits, type LocalDataset } from '../data/index.ts';
import { type FastTrainingPool, planFromModel, type TrainingPlan, trainFast } from './fast/index.ts';

/**
 * What trained: the fast path, or TensorFlow.js's model.fit on its backend (native with or
 * without a GPU, wasm, or plain JS).
 */
export type TrainingPath = 'wasm-simd-fused' | 'tfjs-node-gpu' | 'tfjs-node' | 'tfjs-wasm' | 'tfjs-cpu';

/** The path names, as the protocol accepts them. */
export const TRAINING_PATHS: readonly TrainingPath[] = [
  'wasm-simd-fused',
  'tfjs-node-gpu',
  'tfjs-node',
  'tfjs-wasm',
  'tfjs-cpu',
];

export interface LocalTrainingResult {
  update: WeightTensor[];
  numExamples: number;
  metrics: Record<string, number>;
  trainMs: number;
  trainingPath: TrainingPath;
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
  /**
   * Threads the fast path trains on. Default: none, the fast path runs on the calling thread
   * (yielding to the event loop after every batch).
   */
  pool?: FastTrainingPool;
  /** `tfjs` trains with model.fit even where the fast path could. Default `auto`. */
  path?: 'auto' | 'tfjs';
  /** Where the choice of path is logged when the fast path cannot train the model. Default: nowhere. */
  log?: Logger;
}

/** The path model.fit trains on, from the backend chosen at start-up. */
export function tfjsTrainingPath(): TrainingPath {
  switch (currentBackend()?.name) {
    case 'tensorflow-gpu':
      return 'tfjs-node-gpu';
    case 'tensorflow':
      return 'tfjs-node';
    case 'cpu':
      return 'tfjs-cpu';
    default:
      return 'tfjs-wasm';
  }
}

/** The path a model the fast path supports trains on: the fast path, unless a native package is installed. */
export function defaultTrainingPath(): TrainingPath {
  const tfjsPath = tfjsTrainingPath();
  return tfjsPath === 'tfjs-node' || tfjsPath === 'tfjs-node-gpu' ? tfjsPath : 'wasm-simd-fused';
}

/** What training needs to know of a model before it trains: its signature, weights and fast-path plan. */
interface ModelFacts {
  inputShape: number[];
  classes: number;
  specs: ReturnType<typeof modelWeightSpecs>;
  planned: ReturnType<typeof planFromModel>;
}

/**
 * Facts by architecture (its JSON). Building a TensorFlow.js model initialises every weight (about
 * 20 ms for the MLP, 125 ms for the CNN): the fast path needs only these facts, so a round after
 * the first builds nothing. A few architectures per agent.
 */
const modelFacts = new Map<string, ModelFacts>();
const MAX_MODEL_FACTS = 8;

async function factsOf(architecture: ModelArchitecture): Promise<ModelFacts> {
  const key = JSON.stringify(architecture);
  const known = modelFacts.get(key);
  if (known) return known;
  const model = await buildModel(architecture);
  try {
    const facts: ModelFacts = {
      ...modelSignature(model),
      specs: modelWeightSpecs(model),
      planned: planFromModel(model),
    };
    if (modelFacts.size >= MAX_MODEL_FACTS) modelFacts.delete(modelFacts.keys().next().value as string);
    modelFacts.set(key, facts);
    return facts;
  } finally {
    model.dispose();
  }
}

/** The fast path's plan for the model, or undefined (logged) when model.fit should train it. */
function fastPlan(facts: ModelFacts, opts: TrainLocallyOptions): TrainingPlan | undefined {
  if (opts.path === 'tfjs') return undefined;
  const tfjsPath = tfjsTrainingPath();
  // A native TensorFlow package is as fast or faster (and may have a GPU): it keeps training.
  if (tfjsPath === 'tfjs-node' || tfjsPath === 'tfjs-node-gpu') return undefined;
  if ('plan' in facts.planned) return facts.planned.plan;
  opts.log?.info('training with TensorFlow.js: the fast path does not support this model', {
    reason: facts.planned.unsupported,
    path: tfjsPath,
  });
  return undefined;
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
  const facts = await factsOf(opts.architecture);
  if (opts.signal?.aborted) throw cancelled();
  const { inputShape, classes } = facts;
  assertDatasetFits(opts.dataset, inputShape, classes);
  if (opts.dataset.count === 0)
    throw new LoomError('LOOM_ERR_DATA', `${opts.dataset.source} holds no examples`);
  const plan = fastPlan(facts, opts);
  if (plan) {
    assertMatchesSpecs(facts.specs, opts.global);
    const input = {
      plan,
      weights: opts.global,
      x: opts.dataset.x,
      labels: opts.dataset.labels,
      count: opts.dataset.count,
      hyper: opts.hyper,
    };
    const { signal } = opts;
    const trained = opts.pool
      ? await opts.pool.train({ ...input, signal })
      : await trainFast({
          ...input,
          shouldStop: () => signal?.aborted ?? false,
          onBatch: yieldToEventLoop,
        });
    if (signal?.aborted) throw cancelled();
    const update = subtractWeights(
      opts.global.map((w, i) => ({ ...w, data: trained.weights[i] })),
      opts.global,
    );
    return {
      update,
      numExamples: opts.dataset.count,
      metrics: { ...trained.metrics },
      trainMs: Date.now() - started,
      trainingPath: 'wasm-simd-fused',
    };
  }
  const model = await buildModel(opts.architecture);
  let tensorsOwner: TrainingDataCache | undefined;
  // A model does not dispose an optimizer it was handed (only one it made from a name).
  const optimizer = tf.train.sgd(opts.hyper.learningRate);
  try {
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
    return {
      update,
      numExamples: opts.dataset.count,
      metrics,
      trainMs: Date.now() - started,
      trainingPath: tfjsTrainingPath(),
    };
  } finally {
    model.dispose();
    optimizer.dispose();
    tensorsOwner?.dispose();
  }
}

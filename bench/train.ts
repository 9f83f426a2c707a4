// Benchmark of local training: samples per second of the agent's fast path and of TensorFlow.js's
// own model.fit on the best installed backend, in the same run, plus each one's time to first batch.
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { FastTrainingPool, planFromModel, type TrainingPlan } from '../edge-agent/training/index.ts';
import { initCompute } from '../shared/compute/index.ts';
import { buildModel, type ModelArchitecture, readWeights, writeWeights } from '../shared/models/index.ts';

const MODELS = ['mlp', 'logistic', 'cnn'] as const;
type ModelName = (typeof MODELS)[number];

const ARCHITECTURES: Record<ModelName, ModelArchitecture> = {
  mlp: { kind: 'mlp', inputShape: [784], layers: [200, 200, 10], activation: 'relu' },
  logistic: { kind: 'logistic', inputShape: [784], classes: 10 },
  cnn: { kind: 'cnn', inputShape: [28, 28, 1], classes: 10 },
};

/** Examples per epoch when --examples is left alone (as the PyTorch reference script uses). */
const DEFAULT_EXAMPLES: Record<ModelName, number> = { mlp: 15_000, logistic: 15_000, cnn: 1_000 };
/**
 * model.fit's examples when --tfjs-examples is left alone: TensorFlow.js trains the CNN only on
 * its plain JavaScript backend (the wasm one lacks the convolution gradients), a few samples a second.
 */
const DEFAULT_TFJS_EXAMPLES: Partial<Record<ModelName, number>> = { cnn: 20 };
const LEARNING_RATE = 0.05;
/** Timed epochs of the fast path after its warm-up; the best one counts. */
const TIMED_EPOCHS = 2;

const USAGE = `usage: npm run bench -- train --model mlp|logistic|cnn --batch-size B [--threads N] [--examples N] [--tfjs-examples N] [--json]
  --model          the 784-200-200-10 MLP, logistic regression or the FedAvg paper CNN (default mlp)
  --batch-size     examples per SGD step (default 32)
  --threads        worker threads of the fast path (default 1)
  --examples       examples of the timed epoch (default ${DEFAULT_EXAMPLES.mlp}, cnn ${DEFAULT_EXAMPLES.cnn})
  --tfjs-examples  examples of model.fit's timed epoch (default: --examples, cnn ${DEFAULT_TFJS_EXAMPLES.cnn})
  --json           one JSON object instead of readable lines`;

interface PathFigures {
  samplesPerSec: number;
  /** From the start of a cold run (threads started, kernels compiled) to the end of its first batch. */
  firstBatchMs: number;
}

interface Result {
  model: ModelName;
  batchSize: number;
  threads: number;
  examples: number;
  fast: PathFigures | { unsupported: string };
  tfjs: PathFigures & { backend: string; examples: number };
}

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(1);
}

function positiveInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) fail(`--${flag} must be a positive integer, got "${text}"`);
  return n;
}

/** MNIST-shaped random data: throughput does not depend on the values. */
function randomData(count: number, features: number): { x: Float32Array; labels: Int32Array } {
  const x = new Float32Array(count * features);
  for (let i = 0; i < x.length; i++) x[i] = Math.random();
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = Math.floor(Math.random() * 10);
  return { x, labels };
}

async function timeFast(
  plan: TrainingPlan,
  weights: { data: Float32Array }[],
  data: { x: Float32Array; labels: Int32Array },
  count: number,
  batchSize: number,
  threads: number,
): Promise<PathFigures> {
  const pool = new FastTrainingPool({ threads });
  try {
    const hyper = { epochs: 1, batchSize, learningRate: LEARNING_RATE };
    // The cold run starts the threads: its first batch is what a first round waits for.
    const cold = await pool.train({
      plan,
      weights,
      ...data,
      count: Math.min(count, Math.max(2_000, batchSize * 100)),
      hyper,
    });
    // The best of two timed epochs, as the PyTorch reference script times its own.
    let best = Number.POSITIVE_INFINITY;
    for (let epoch = 0; epoch < TIMED_EPOCHS; epoch++) {
      const started = performance.now();
      await pool.train({ plan, weights, ...data, count, hyper });
      best = Math.min(best, performance.now() - started);
    }
    return { samplesPerSec: count / (best / 1000), firstBatchMs: cold.firstBatchMs };
  } finally {
    await pool.close();
  }
}

async function timeTfjs(
  model: tf.LayersModel,
  data: { x: Float32Array; labels: Int32Array },
  count: number,
  batchSize: number,
): Promise<PathFigures> {
  const optimizer = tf.train.sgd(LEARNING_RATE);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  const features = inputShape.reduce((a, b) => a * b, 1);
  const xs = tf.tensor(data.x.subarray(0, count * features), [count, ...inputShape]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(data.labels.subarray(0, count), 'int32'), 10).toFloat());
  try {
    let firstBatchAt = Number.NaN;
    const coldStart = performance.now();
    const warm = Math.min(count, batchSize * 5);
    await model.fit(xs.slice(0, warm), ys.slice(0, warm), {
      epochs: 1,
      batchSize,
      verbose: 0,
      callbacks: {
        onBatchEnd: () => {
          if (Number.isNaN(firstBatchAt)) firstBatchAt = performance.now();
        },
      },
    });
    const started = performance.now();
    await model.fit(xs, ys, { epochs: 1, batchSize, shuffle: true, verbose: 0 });
    return {
      samplesPerSec: count / ((performance.now() - started) / 1000),
      firstBatchMs: firstBatchAt - coldStart,
    };
  } finally {
    tf.dispose([xs, ys]);
    optimizer.dispose();
  }
}

export async function run(argv: string[]): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        'batch-size': { type: 'string' },
        threads: { type: 'string' },
        examples: { type: 'string' },
        'tfjs-examples': { type: 'string' },
        json: { type: 'boolean' },
      },
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  const name = (values.model ?? 'mlp') as ModelName;
  if (!MODELS.includes(name)) fail(`--model must be one of ${MODELS.join(', ')}`);
  const batchSize = positiveInt('batch-size', values['batch-size'] as string | undefined, 32);
  const threads = positiveInt('threads', values.threads as string | undefined, 1);
  const examples = positiveInt('examples', values.examples as string | undefined, DEFAULT_EXAMPLES[name]);
  const tfjsExamples = positiveInt(
    'tfjs-examples',
    values['tfjs-examples'] as string | undefined,
    DEFAULT_TFJS_EXAMPLES[name] ?? examples,
  );
  const backend = await initCompute();
  const model = await buildModel(ARCHITECTURES[name]);
  try {
    const weights = readWeights(model);
    const features = (model.inputs[0].shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
    const data = randomData(Math.max(examples, tfjsExamples), features);
    const planned = planFromModel(model);
    const fast =
      'plan' in planned ? await timeFast(planned.plan, weights, data, examples, batchSize, threads) : planned;
    writeWeights(model, weights);
    // The best backend that trains a convolution: the wasm one has no Conv2DBackpropFilter.
    const tfjsBackend = name === 'cnn' && backend.name === 'wasm' ? 'cpu' : backend.name;
    if (tfjsBackend !== backend.name) await tf.setBackend(tfjsBackend);
    const tfjs = await timeTfjs(model, data, tfjsExamples, batchSize);
    const result: Result = {
      model: name,
      batchSize,
      threads,
      examples,
      fast: 'samplesPerSec' in fast ? round(fast) : fast,
      tfjs: { ...round(tfjs), backend: tfjsBackend, examples: tfjsExamples },
    };
    if (values.json) {
      console.log(JSON.stringify(result));
      return;
    }
    console.log(`${name}, batch ${batchSize}, ${examples} examples`);
    console.log(
      'samplesPerSec' in result.fast
        ? `  fast path (${threads} thread${threads === 1 ? '' : 's'}): ${result.fast.samplesPerSec} samples/s, first batch after ${result.fast.firstBatchMs} ms`
        : `  fast path: unsupported (${result.fast.unsupported})`,
    );
    console.log(
      `  tfjs model.fit (${result.tfjs.backend}): ${result.tfjs.samplesPerSec} samples/s, first batch after ${result.tfjs.firstBatchMs} ms`,
    );
  } finally {
    model.dispose();
  }
}

function round<T extends PathFigures>(f: T): T {
  // Below 10 samples/s (TensorFlow.js's CNN on the cpu backend) two decimals still say something.
  const rate = f.samplesPerSec < 10 ? Math.round(f.samplesPerSec * 100) / 100 : Math.round(f.samplesPerSec);
  return { ...f, samplesPerSec: rate, firstBatchMs: Math.round(f.firstBatchMs) };
}

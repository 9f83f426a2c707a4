// The fast training path gives the numbers TensorFlow.js's model.fit gives, for the same initial
// weights and batches: the loss (forward), the gradients, and the weights after one epoch.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readMnist } from '../../edge-agent/data/index.ts';
import {
  FastTrainingPool,
  FusedNet,
  planFromModel,
  type TrainingPlan,
  trainFast,
} from '../../edge-agent/training/fast/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { buildModel, type ModelArchitecture, readWeights, writeWeights } from '../../shared/models/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';

const MLP: ModelArchitecture = { kind: 'mlp', inputShape: [784], layers: [200, 200, 10], activation: 'relu' };
const LOGISTIC: ModelArchitecture = { kind: 'logistic', inputShape: [28, 28], classes: 10 };

let x: Float32Array;
let labels: Int32Array;
const COUNT = 200;

beforeAll(async () => {
  await initCompute();
  const m = await readMnist('train', { limit: COUNT });
  x = Float32Array.from(m.images, (v) => v / 255);
  labels = Int32Array.from(m.labels);
});

/** The largest |a − b| over every weight, relative to the largest |b| of that tensor. */
function maxRelativeDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let worst = 0;
  a.forEach((values, t) => {
    let scale = 1e-3;
    for (const v of b[t]) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i] - b[t][i]) / scale);
  });
  return worst;
}

async function modelWithPlan(
  arch: ModelArchitecture,
): Promise<{ model: tf.LayersModel; plan: TrainingPlan; weights: WeightTensor[] }> {
  const model = await buildModel(arch);
  const result = planFromModel(model);
  if (!('plan' in result)) throw new Error(`unsupported: ${result.unsupported}`);
  return { model, plan: result.plan, weights: readWeights(model) };
}

/** One epoch of model.fit, in order, from `weights`; returns the trained weights and the history. */
async function fitOneEpoch(
  model: tf.LayersModel,
  weights: WeightTensor[],
  batchSize: number,
  learningRate: number,
) {
  writeWeights(model, weights);
  const optimizer = tf.train.sgd(learningRate);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const xs = tf.tensor(x, [COUNT, ...(model.inputs[0].shape.slice(1) as number[])]);
  const ys = tf.oneHot(tf.tensor1d(labels, 'int32'), 10).toFloat();
  const history = await model.fit(xs, ys, { epochs: 1, batchSize, shuffle: false, verbose: 0 });
  tf.dispose([xs, ys]);
  optimizer.dispose();
  return {
    weights: readWeights(model).map((w) => w.data),
    loss: Number(history.history.loss[0]),
    accuracy: Number(history.history.acc[0]),
  };
}

describe.each([
  ['the 784-200-200-10 MLP', MLP, 32, 0.1],
  ['the MLP at batch 10 with a short last batch', MLP, 16, 0.05],
  ['logistic regression', LOGISTIC, 32, 0.5],
])('fast path equals model.fit for %s', (_name, arch, batchSize, learningRate) => {
  it('gives the same loss on a batch (forward)', async () => {
    const { model, plan, weights } = await modelWithPlan(arch);
    const net = new FusedNet(plan, batchSize);
    net.setWeights(weights);
    const order = Int32Array.from({ length: batchSize }, (_, i) => i);
    const { lossSum, correct } = net.step(x, labels, order, 0, batchSize, 0);
    const [tfLoss, tfCorrect] = tf.tidy(() => {
      const xs = tf.tensor(x.subarray(0, batchSize * 784), [
        batchSize,
        ...(model.inputs[0].shape.slice(1) as number[]),
      ]);
      const ys = tf.oneHot(tf.tensor1d(labels.subarray(0, batchSize), 'int32'), 10).toFloat();
      const probs = model.predict(xs) as tf.Tensor;
      const loss = tf.metrics.categoricalCrossentropy(ys, probs).mean();
      // The metric works on probabilities as fit's loss does; its mean is fit's batch loss.
      const hits = tf.equal(probs.argMax(1), ys.argMax(1)).sum();
      return [loss.dataSync()[0], hits.dataSync()[0]];
    });
    expect(lossSum / batchSize).toBeCloseTo(tfLoss, 4);
    expect(correct).toBe(tfCorrect);
    model.dispose();
  });

  it('gives the same gradients', async () => {
    const { model, plan, weights } = await modelWithPlan(arch);
    const net = new FusedNet(plan, batchSize);
    net.setWeights(weights);
    const order = Int32Array.from({ length: batchSize }, (_, i) => i);
    // With a learning rate of 1 the step moves each weight by exactly minus its gradient.
    net.step(x, labels, order, 0, batchSize, 1);
    const fastGrads = net.getWeights().map((after, t) => after.map((v, i) => weights[t].data[i] - v));
    writeWeights(model, weights);
    const tfGrads = tf.tidy(() => {
      const xs = tf.tensor(x.subarray(0, batchSize * 784), [
        batchSize,
        ...(model.inputs[0].shape.slice(1) as number[]),
      ]);
      const ys = tf.oneHot(tf.tensor1d(labels.subarray(0, batchSize), 'int32'), 10).toFloat();
      const { grads } = tf.variableGrads(
        () => tf.metrics.categoricalCrossentropy(ys, model.apply(xs) as tf.Tensor).mean() as tf.Scalar,
        model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val),
      );
      return model.trainableWeights.map(
        (w) => grads[(w as unknown as { val: tf.Variable }).val.name].dataSync() as Float32Array,
      );
    });
    expect(maxRelativeDiff(fastGrads, tfGrads)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('gives the same weights and metrics after one epoch', async () => {
    const { model, plan, weights } = await modelWithPlan(arch);
    const fast = await trainFast({
      plan,
      weights,
      x,
      labels,
      count: COUNT,
      hyper: { epochs: 1, batchSize, learningRate },
      shuffle: false,
    });
    const fit = await fitOneEpoch(model, weights, batchSize, learningRate);
    expect(maxRelativeDiff(fast.weights, fit.weights)).toBeLessThan(1e-4);
    expect(fast.metrics.loss).toBeCloseTo(fit.loss, 4);
    expect(fast.metrics.accuracy).toBeCloseTo(fit.accuracy, 6);
    model.dispose();
  });
});

describe('fast path on worker threads', () => {
  it.each([1, 2])(
    'gives on %i thread(s) exactly the weights it gives on the calling thread',
    async (threads) => {
      const { model, plan, weights } = await modelWithPlan(MLP);
      model.dispose();
      const hyper = { epochs: 2, batchSize: 10, learningRate: 0.05 };
      const input = { plan, weights, x, labels, count: COUNT, hyper, shuffle: false };
      const here = await trainFast(input);
      const pool = new FastTrainingPool({ threads });
      try {
        const pooled = await pool.train(input);
        expect(pooled.threads).toBe(threads);
        expect(maxRelativeDiff(pooled.weights, here.weights)).toBeLessThan(1e-6);
        expect(pooled.metrics.loss).toBeCloseTo(here.metrics.loss, 6);
        expect(pooled.metrics.accuracy).toBe(here.metrics.accuracy);
        expect(pooled.firstBatchMs).toBeGreaterThanOrEqual(0);
      } finally {
        await pool.close();
      }
    },
  );

  it('stops every thread at the step in progress when the task is cancelled, and trains again after', async () => {
    const { model, plan, weights } = await modelWithPlan(MLP);
    model.dispose();
    const pool = new FastTrainingPool({ threads: 2 });
    try {
      const controller = new AbortController();
      const training = pool.train({
        plan,
        weights,
        x,
        labels,
        count: COUNT,
        hyper: { epochs: 100_000, batchSize: 10, learningRate: 0.01 },
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(), 50);
      await expect(training).rejects.toMatchObject({ code: 'LOOM_ERR_JOB_CANCELLED' });
      const again = await pool.train({
        plan,
        weights,
        x,
        labels,
        count: COUNT,
        hyper: { epochs: 1, batchSize: 10, learningRate: 0.01 },
      });
      expect(again.metrics.loss).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });
});

describe('a training thread that dies', () => {
  it('fails the run with LOOM_ERR_INTERNAL instead of hanging, and the next run starts new threads', async () => {
    const { model, plan, weights } = await modelWithPlan(MLP);
    model.dispose();
    const pool = new FastTrainingPool({ threads: 2 });
    try {
      const hyper = { epochs: 100_000, batchSize: 10, learningRate: 0.01 };
      const training = pool.train({ plan, weights, x, labels, count: COUNT, hyper });
      // The threads exist once the run has sent them the job.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const threads = (pool as unknown as { workers: { terminate(): Promise<number> }[] }).workers;
      await threads[1].terminate();
      await expect(training).rejects.toMatchObject({ code: 'LOOM_ERR_INTERNAL' });
      const again = await pool.train({
        plan,
        weights,
        x,
        labels,
        count: COUNT,
        hyper: { ...hyper, epochs: 1 },
      });
      expect(again.threads).toBe(2);
    } finally {
      await pool.close();
    }
  });
});

describe('which models the fast path trains', () => {
  it('takes Flatten and Dense layers with relu, linear and a softmax output', async () => {
    const model = await buildModel({
      kind: 'mlp',
      inputShape: [28, 28],
      layers: [64, 10],
      activation: 'linear',
    });
    const result = planFromModel(model);
    expect(result).toEqual({
      plan: {
        inputs: 784,
        classes: 10,
        layers: [
          { kind: 'dense', inputs: 784, units: 64, activation: 'linear' },
          { kind: 'dense', inputs: 64, units: 10, activation: 'softmax' },
        ],
      },
    });
    model.dispose();
  });

  it('names the layer or setting it lacks', async () => {
    const tanh = await buildModel({ kind: 'mlp', inputShape: [784], layers: [32, 10], activation: 'tanh' });
    expect(planFromModel(tanh)).toEqual({ unsupported: 'the tanh activation (dense_0)' });
    tanh.dispose();
    const dropout = tf.sequential({
      layers: [
        tf.layers.dense({ units: 8, inputShape: [4], activation: 'relu' }),
        tf.layers.dropout({ rate: 0.5 }),
        tf.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    expect(planFromModel(dropout)).toMatchObject({ unsupported: expect.stringMatching(/^a Dropout layer/) });
    dropout.dispose();
  });
});

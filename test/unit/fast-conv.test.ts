// Convolutions and max pooling on the fast training path give the numbers TensorFlow.js's
// model.fit gives on its 'cpu' backend (the wasm backend has no convolution gradients): the loss,
// the gradients and the weights after one epoch, for a small CNN and for the built-in one.
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
import { buildModel, readWeights, writeWeights } from '../../shared/models/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';

function maxRelativeDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let worst = 0;
  a.forEach((values, t) => {
    let scale = 1e-3;
    for (const v of b[t]) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i] - b[t][i]) / scale);
  });
  return worst;
}

interface Case {
  model: tf.LayersModel;
  plan: TrainingPlan;
  weights: WeightTensor[];
  shape: number[];
  classes: number;
  x: Float32Array;
  labels: Int32Array;
}

function withPlan(model: tf.LayersModel, x: Float32Array, labels: Int32Array): Case {
  const result = planFromModel(model);
  if (!('plan' in result)) throw new Error(`unsupported: ${result.unsupported}`);
  const shape = model.inputs[0].shape.slice(1) as number[];
  return {
    model,
    plan: result.plan,
    weights: readWeights(model),
    shape,
    classes: result.plan.classes,
    x,
    labels,
  };
}

/** A small CNN on 8×8×2 images: 3×3 conv of 5, pooling, 5×5 conv of 3 without pooling, dense 6, softmax 4. */
function smallCnn(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [8, 8, 2],
        filters: 5,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
      }),
      tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
      tf.layers.conv2d({ filters: 3, kernelSize: 5, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 6, activation: 'relu' }),
      tf.layers.dense({ units: 4, activation: 'softmax' }),
    ],
  });
}

function tfGradients(c: Case, count: number): Float32Array[] {
  writeWeights(c.model, c.weights);
  return tf
    .tidy(() => {
      const xs = tf.tensor(c.x.subarray(0, count * c.plan.inputs), [count, ...c.shape]);
      const ys = tf.oneHot(tf.tensor1d(c.labels.subarray(0, count), 'int32'), c.classes).toFloat();
      const { grads } = tf.variableGrads(
        () => tf.metrics.categoricalCrossentropy(ys, c.model.apply(xs) as tf.Tensor).mean() as tf.Scalar,
        c.model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val),
      );
      return c.model.trainableWeights.map(
        (w) => grads[(w as unknown as { val: tf.Variable }).val.name].dataSync() as Float32Array,
      );
    })
    .map((g) => Float32Array.from(g));
}

function fastGradients(c: Case, count: number): Float32Array[] {
  const net = new FusedNet(c.plan, count);
  net.setWeights(c.weights);
  net.step(
    c.x,
    c.labels,
    Int32Array.from({ length: count }, (_, i) => i),
    0,
    count,
    1,
  );
  return net.getWeights().map((after, t) => after.map((v, i) => c.weights[t].data[i] - v));
}

let small: Case;
let mnistX: Float32Array;
let mnistLabels: Int32Array;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const count = 37;
  const x = Float32Array.from({ length: count * 128 }, (_, i) => Math.sin(i * 12.9898) * 0.5 + 0.5);
  const labels = Int32Array.from({ length: count }, (_, i) => (i * 7) % 4);
  small = withPlan(smallCnn(), x, labels);
  const m = await readMnist('train', { limit: 20 });
  mnistX = Float32Array.from(m.images, (v) => v / 255);
  mnistLabels = Int32Array.from(m.labels);
});

describe('fast path convolutions equal TensorFlow.js', () => {
  it('plans the small CNN as conv, pool, conv, pool, dense, dense', () => {
    expect(small.plan.layers.map((l) => l.kind)).toEqual([
      'conv2d',
      'maxpool2d',
      'conv2d',
      'maxpool2d',
      'dense',
      'dense',
    ]);
  });

  it('gives the same weights back and the same loss (forward)', () => {
    const batch = 12;
    const net = new FusedNet(small.plan, batch);
    net.setWeights(small.weights);
    expect(
      maxRelativeDiff(
        net.getWeights(),
        small.weights.map((w) => w.data),
      ),
    ).toBe(0);
    const { lossSum, correct } = net.step(
      small.x,
      small.labels,
      Int32Array.from({ length: batch }, (_, i) => i),
      0,
      batch,
      0,
    );
    const [loss, hits] = tf.tidy(() => {
      const xs = tf.tensor(small.x.subarray(0, batch * 128), [batch, 8, 8, 2]);
      const ys = tf.oneHot(tf.tensor1d(small.labels.subarray(0, batch), 'int32'), 4).toFloat();
      const probs = small.model.predict(xs) as tf.Tensor;
      return [
        tf.metrics.categoricalCrossentropy(ys, probs).mean().dataSync()[0],
        tf.equal(probs.argMax(1), ys.argMax(1)).sum().dataSync()[0],
      ];
    });
    expect(lossSum / batch).toBeCloseTo(loss, 5);
    expect(correct).toBe(hits);
  });

  it('gives the same gradients (a batch not a multiple of the row block)', () => {
    const diff = maxRelativeDiff(fastGradients(small, 10), tfGradients(small, 10));
    expect(diff).toBeLessThan(1e-4);
  });

  it('gives the weights of one epoch of model.fit', async () => {
    const batch = 8;
    const learningRate = 0.3;
    writeWeights(small.model, small.weights);
    const optimizer = tf.train.sgd(learningRate);
    small.model.compile({ optimizer, loss: 'categoricalCrossentropy' });
    const count = small.labels.length;
    const xs = tf.tensor(small.x, [count, 8, 8, 2]);
    const ys = tf.oneHot(tf.tensor1d(small.labels, 'int32'), 4).toFloat();
    await small.model.fit(xs, ys, { epochs: 1, batchSize: batch, shuffle: false, verbose: 0 });
    tf.dispose([xs, ys]);
    const expected = readWeights(small.model).map((w) => w.data);
    const fast = await trainFast({
      plan: small.plan,
      weights: small.weights,
      x: small.x,
      labels: small.labels,
      count,
      hyper: { epochs: 1, batchSize: batch, learningRate },
      shuffle: false,
    });
    expect(maxRelativeDiff(fast.weights, expected)).toBeLessThan(1e-4);
  });

  it('gives the gradients of a batch of the built-in CNN on MNIST', async () => {
    const model = await buildModel({ kind: 'cnn', inputShape: [28, 28, 1], classes: 10 });
    const c = withPlan(model, mnistX, mnistLabels);
    const diff = maxRelativeDiff(fastGradients(c, 4), tfGradients(c, 4));
    expect(diff).toBeLessThan(1e-3);
    model.dispose();
  }, 60_000);

  it('gives on 2 worker threads exactly the weights it gives on the calling thread', async () => {
    const hyper = { epochs: 2, batchSize: 10, learningRate: 0.1 };
    const count = small.labels.length;
    const input = {
      plan: small.plan,
      weights: small.weights,
      x: small.x,
      labels: small.labels,
      count,
      hyper,
      shuffle: false,
    };
    const here = await trainFast(input);
    const pool = new FastTrainingPool({ threads: 2 });
    try {
      const pooled = await pool.train(input);
      expect(pooled.threads).toBe(2);
      expect(maxRelativeDiff(pooled.weights, here.weights)).toBeLessThan(1e-6);
      expect(pooled.metrics.accuracy).toBe(here.metrics.accuracy);
    } finally {
      await pool.close();
    }
  });
});

// Local training on the agent: the update is local minus global, and no tensors leak.
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LocalDataset } from '../../edge-agent/data/index.ts';
import { readMnist } from '../../edge-agent/data/index.ts';
import { TrainingDataCache, trainLocally } from '../../edge-agent/training/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { initialWeights, type ModelArchitecture } from '../../shared/models/index.ts';

const ARCH: ModelArchitecture = { kind: 'mlp', inputShape: [784], layers: [16, 10], activation: 'relu' };

describe('local training', () => {
  let dataset: LocalDataset;
  beforeAll(async () => {
    await initCompute();
    const m = await readMnist('train', { limit: 256 });
    dataset = {
      x: Float32Array.from(m.images, (v) => v / 255),
      labels: Int32Array.from(m.labels),
      count: m.count,
      featureShape: [784],
      source: 'mnist-train-0-256',
    };
  });

  it('returns local minus global weights, the example count and metrics', async () => {
    const { weights } = await initialWeights(ARCH);
    const result = await trainLocally({
      architecture: ARCH,
      global: weights,
      dataset,
      hyper: { epochs: 2, batchSize: 32, learningRate: 0.1 },
    });
    expect(result.numExamples).toBe(256);
    expect(result.update.map((u) => u.name)).toEqual(weights.map((w) => w.name));
    expect(result.update.every((u) => u.data.some((v) => v !== 0))).toBe(true);
    expect(result.metrics.loss).toBeGreaterThan(0);
    expect(result.metrics.accuracy).toBeGreaterThan(0);
  });

  it('does not leak tensors, with or without a dataset cache', async () => {
    const { weights } = await initialWeights(ARCH);
    const hyper = { epochs: 1, batchSize: 64, learningRate: 0.05 };
    await trainLocally({ architecture: ARCH, global: weights, dataset, hyper });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await trainLocally({ architecture: ARCH, global: weights, dataset, hyper });
    expect(tf.memory().numTensors).toBe(before);

    const cache = new TrainingDataCache();
    await trainLocally({ architecture: ARCH, global: weights, dataset, hyper, cache });
    const withCache = tf.memory().numTensors;
    for (let i = 0; i < 3; i++)
      await trainLocally({ architecture: ARCH, global: weights, dataset, hyper, cache });
    expect(tf.memory().numTensors).toBe(withCache);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('does not start training for a task cancelled before it ran, and leaks nothing', async () => {
    const { weights } = await initialWeights(ARCH);
    const before = tf.memory().numTensors;
    await expect(
      trainLocally({
        architecture: ARCH,
        global: weights,
        dataset,
        hyper: { epochs: 50, batchSize: 1, learningRate: 0.1 },
        signal: AbortSignal.abort(),
      }),
    ).rejects.toMatchObject({ code: 'LOOM_ERR_JOB_CANCELLED' });
    expect(tf.memory().numTensors).toBe(before);
  });

  describe('cancelled while it trains', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    it('stops within a batch of the cancel, rejects with LOOM_ERR_JOB_CANCELLED and leaks nothing', async () => {
      const { weights } = await initialWeights(ARCH);
      const controller = new AbortController();
      let batches = 0;
      // Counts batches from inside fit and cancels after the third, so the test needs no clock.
      const realFit = tf.LayersModel.prototype.fit;
      vi.spyOn(tf.LayersModel.prototype, 'fit').mockImplementation(function (
        this: tf.LayersModel,
        x,
        y,
        args = {},
      ) {
        const counter: tf.CustomCallbackArgs = {
          onBatchEnd: () => {
            batches++;
            if (batches === 3) controller.abort();
          },
        };
        const theirs = args.callbacks as tf.CustomCallbackArgs | undefined;
        return realFit.call(this, x, y, { ...args, callbacks: theirs ? [theirs, counter] : [counter] });
      });
      const cache = new TrainingDataCache();
      cache.get(dataset, [784], 10);
      const before = tf.memory().numTensors;
      await expect(
        trainLocally({
          architecture: ARCH,
          global: weights,
          dataset,
          // 3 epochs of 32 batches each, were it not cancelled.
          hyper: { epochs: 3, batchSize: 8, learningRate: 0.1 },
          signal: controller.signal,
          cache,
          path: 'tfjs',
        }),
      ).rejects.toMatchObject({ code: 'LOOM_ERR_JOB_CANCELLED' });
      // The batch in progress when the cancel came finishes; no further one starts.
      expect(batches).toBe(4);
      expect(tf.memory().numTensors).toBe(before);
      cache.dispose();
    });
  });

  it('trains a dense model on the fast path and says so', async () => {
    const { weights } = await initialWeights(ARCH);
    const hyper = { epochs: 1, batchSize: 32, learningRate: 0.1 };
    const fast = await trainLocally({ architecture: ARCH, global: weights, dataset, hyper });
    expect(fast.trainingPath).toBe('wasm-simd-fused');
    expect(fast.metrics.loss).toBeGreaterThan(0);
    const tfjs = await trainLocally({ architecture: ARCH, global: weights, dataset, hyper, path: 'tfjs' });
    expect(tfjs.trainingPath).toBe('tfjs-wasm');
    expect(tfjs.update.map((u) => u.shape)).toEqual(fast.update.map((u) => u.shape));
  });

  it('trains a model the fast path lacks a kernel for with TensorFlow.js, with a log line saying why', async () => {
    const arch: ModelArchitecture = { kind: 'mlp', inputShape: [784], layers: [16, 10], activation: 'tanh' };
    const { weights } = await initialWeights(arch);
    const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
    const log = createLogger({ write: () => {} });
    vi.spyOn(log, 'info').mockImplementation((msg, fields) => {
      lines.push({ msg, fields });
    });
    const result = await trainLocally({
      architecture: arch,
      global: weights,
      dataset,
      hyper: { epochs: 1, batchSize: 32, learningRate: 0.1 },
      log,
    });
    expect(result.trainingPath).toBe('tfjs-wasm');
    expect(result.update.every((u) => u.data.some((v) => v !== 0))).toBe(true);
    expect(lines).toEqual([
      {
        msg: 'training with TensorFlow.js: the fast path does not support this model',
        fields: { reason: 'the tanh activation (dense_0)', path: 'tfjs-wasm' },
      },
    ]);
  });

  it('stops a fast-path training at the cancel with LOOM_ERR_JOB_CANCELLED', async () => {
    const { weights } = await initialWeights(ARCH);
    const controller = new AbortController();
    const training = trainLocally({
      architecture: ARCH,
      global: weights,
      dataset,
      hyper: { epochs: 10_000, batchSize: 1, learningRate: 0.01 },
      signal: controller.signal,
    });
    // The fast path yields after every batch, so the abort below runs while it trains.
    setImmediate(() => controller.abort());
    await expect(training).rejects.toMatchObject({ code: 'LOOM_ERR_JOB_CANCELLED' });
  });

  it('refuses data that does not fit the model with LOOM_ERR_DATA', async () => {
    const arch: ModelArchitecture = { kind: 'logistic', inputShape: [10], classes: 3 };
    const { weights } = await initialWeights(arch);
    await expect(
      trainLocally({
        architecture: arch,
        global: weights,
        dataset,
        hyper: { epochs: 1, batchSize: 8, learningRate: 0.1 },
      }),
    ).rejects.toMatchObject({ code: 'LOOM_ERR_DATA' });
  });
});

// The agent's train / hold-out split and its local evaluation: stable, disjoint, leak-free.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { datasetSeed, type LocalDataset, readMnist, splitDataset } from '../../edge-agent/data/index.ts';
import { evaluateLocally, trainLocally } from '../../edge-agent/training/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { initialWeights, type ModelArchitecture } from '../../shared/models/index.ts';
import { holdoutCount } from '../../shared/protocol/index.ts';

const ARCH: ModelArchitecture = { kind: 'mlp', inputShape: [784], layers: [16, 10], activation: 'relu' };

async function mnist(offset: number, limit: number): Promise<LocalDataset> {
  const m = await readMnist('train', { offset, limit });
  return {
    x: Float32Array.from(m.images, (v) => v / 255),
    labels: Int32Array.from(m.labels),
    count: m.count,
    featureShape: [784],
    source: `mnist-${offset}-${limit}`,
  };
}

/** Each example as a string of its label and pixels, to compare parts by content. */
function rows(d: LocalDataset): string[] {
  const size = d.x.length / d.count;
  return Array.from(
    { length: d.count },
    (_, i) => `${d.labels[i]}:${d.x.subarray(i * size, (i + 1) * size).join(',')}`,
  );
}

describe('hold-out split', () => {
  let dataset: LocalDataset;
  beforeAll(async () => {
    await initCompute();
    dataset = await mnist(0, 500);
  });

  it('holds out the agreed share, disjoint from the training part, together every example', () => {
    const split = splitDataset(dataset, 0.1);
    expect(split.holdout.count).toBe(holdoutCount(500, 0.1));
    expect(split.holdout.count).toBe(50);
    expect(split.train.count).toBe(450);
    const train = new Set(rows(split.train));
    const holdout = rows(split.holdout);
    // MNIST's first 500 images are distinct, so content equality means the same example.
    expect(holdout.filter((r) => train.has(r))).toEqual([]);
    expect(new Set([...train, ...holdout])).toEqual(new Set(rows(dataset)));
  });

  it('is the same split on every run: seeded from the data, not the clock or the process', async () => {
    const again = await mnist(0, 500); // a fresh load, as after a restart
    const a = splitDataset(dataset, 0.2);
    const b = splitDataset(again, 0.2);
    expect(datasetSeed(again)).toBe(datasetSeed(dataset));
    expect(Array.from(b.holdoutIndices)).toEqual(Array.from(a.holdoutIndices));
    expect(rows(b.holdout)).toEqual(rows(a.holdout));
  });

  it('differs between sites with different data', async () => {
    const other = await mnist(500, 500);
    expect(datasetSeed(other)).not.toBe(datasetSeed(dataset));
    expect(Array.from(splitDataset(other, 0.1).holdoutIndices)).not.toEqual(
      Array.from(splitDataset(dataset, 0.1).holdoutIndices),
    );
  });

  it('holds out nothing at share 0 and keeps the order of the examples in each part', () => {
    const none = splitDataset(dataset, 0);
    expect(none.holdout.count).toBe(0);
    expect(rows(none.train)).toEqual(rows(dataset));
    const split = splitDataset(dataset, 0.5);
    const idx = Array.from(split.holdoutIndices);
    expect(idx).toEqual([...idx].sort((x, y) => x - y));
  });
});

describe('local evaluation', () => {
  let dataset: LocalDataset;
  beforeAll(async () => {
    await initCompute();
    dataset = await mnist(0, 600);
  });

  it('returns loss, accuracy and a confusion matrix that adds up, without leaking tensors', async () => {
    const { holdout, train } = splitDataset(dataset, 0.25);
    const { weights } = await initialWeights(ARCH);
    const trained = await trainLocally({
      architecture: ARCH,
      global: weights,
      dataset: train,
      hyper: { epochs: 3, batchSize: 32, learningRate: 0.1 },
    });
    const local = weights.map((w, i) => ({
      ...w,
      data: w.data.map((v, j) => v + trained.update[i].data[j]),
    }));
    const before = tf.memory().numTensors;
    const result = await evaluateLocally({
      architecture: ARCH,
      weights: local,
      dataset: holdout,
      batchSize: 64,
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(result.numExamples).toBe(150);
    expect(result.confusion).toHaveLength(10);
    expect(result.confusion.every((row) => row.length === 10)).toBe(true);
    const total = result.confusion.flat().reduce((a, b) => a + b, 0);
    expect(total).toBe(150);
    const diagonal = result.confusion.reduce((n, row, i) => n + row[i], 0);
    expect(result.accuracy).toBeCloseTo(diagonal / 150, 10);
    for (let c = 0; c < 10; c++) {
      const actual = Array.from(holdout.labels).filter((l) => l === c).length;
      expect(result.confusion[c].reduce((a, b) => a + b, 0)).toBe(actual);
    }
    // Far above chance (0.1) on examples it never trained on.
    expect(result.accuracy).toBeGreaterThan(0.3);
    expect(Number.isFinite(result.loss) && result.loss > 0).toBe(true);
    const untrained = await evaluateLocally({ architecture: ARCH, weights, dataset: holdout });
    expect(untrained.loss).toBeGreaterThan(result.loss);
  });

  it('refuses an empty hold-out part with LOOM_ERR_DATA', async () => {
    const { weights } = await initialWeights(ARCH);
    await expect(
      evaluateLocally({ architecture: ARCH, weights, dataset: splitDataset(dataset, 0).holdout }),
    ).rejects.toMatchObject({ code: 'LOOM_ERR_DATA' });
  });
});

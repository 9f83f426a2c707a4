// The deterministic train / hold-out split of a site's local data. The seed is a hash of the data
// itself, so the split is the same at every start and for every model version: evaluations made at
// different times, of different versions, score the same examples, and none of them was trained on.
import { createHash } from 'node:crypto';
import { holdoutCount } from '../../shared/protocol/index.ts';
import type { LocalDataset } from './types.ts';

/** A dataset cut in two disjoint parts; `holdoutIndices` are positions in the original, ascending. */
export interface DatasetSplit {
  train: LocalDataset;
  holdout: LocalDataset;
  holdoutIndices: Int32Array;
  /** Hex SHA-256 of the data the split was seeded from. */
  seed: string;
  fraction: number;
}

/** Hex SHA-256 over the dataset's shape, labels and feature bytes: the split's seed. */
export function datasetSeed(dataset: LocalDataset): string {
  const hash = createHash('sha256');
  hash.update(`${dataset.count}|${dataset.featureShape.join('x')}|`);
  hash.update(Buffer.from(dataset.labels.buffer, dataset.labels.byteOffset, dataset.labels.byteLength));
  hash.update(Buffer.from(dataset.x.buffer, dataset.x.byteOffset, dataset.x.byteLength));
  return hash.digest('hex');
}

/** A small, fast seeded generator (mulberry32): the same seed gives the same sequence everywhere. */
function generator(seedHex: string): () => number {
  let state = Number.parseInt(seedHex.slice(0, 8), 16) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function subset(dataset: LocalDataset, indices: Int32Array, part: string): LocalDataset {
  const size = dataset.count === 0 ? 0 : dataset.x.length / dataset.count;
  const x = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  indices.forEach((from, to) => {
    x.set(dataset.x.subarray(from * size, (from + 1) * size), to * size);
    labels[to] = dataset.labels[from];
  });
  return {
    x,
    labels,
    count: indices.length,
    featureShape: [...dataset.featureShape],
    source: `${dataset.source} (${part})`,
  };
}

/**
 * Splits `dataset` into a training part and a hold-out part of `holdoutCount(count, fraction)`
 * examples, chosen by a shuffle seeded from the data (`datasetSeed`, or `seed` when given). The
 * parts are disjoint and together hold every example; the same data and fraction always give the
 * same split. A TypeError for a fraction outside [0, 1].
 */
export function splitDataset(dataset: LocalDataset, fraction: number, seed?: string): DatasetSplit {
  if (!(fraction >= 0 && fraction <= 1)) throw new TypeError('fraction must be within [0, 1]');
  const seedHex = seed ?? datasetSeed(dataset);
  const order = Int32Array.from({ length: dataset.count }, (_, i) => i);
  const random = generator(seedHex);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const k = holdoutCount(dataset.count, fraction);
  const holdoutIndices = order.slice(0, k).sort();
  const trainIndices = order.slice(k).sort();
  return {
    train: subset(dataset, trainIndices, 'training part'),
    holdout: subset(dataset, holdoutIndices, 'hold-out part'),
    holdoutIndices,
    seed: seedHex,
    fraction,
  };
}

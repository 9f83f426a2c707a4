// Splits the MNIST training set into disjoint per-site partitions for the demo, written as the
// IDX files each agent reads locally.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readMnist, writeIdx } from '../edge-agent/index.ts';

export type Partition = 'iid' | 'shards';

/** A small deterministic PRNG (mulberry32) so demo partitions are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Indices of each site's examples. `iid`: a shuffled equal split. `shards`: sorted by label and
 * cut into 2 shards per site (the non-IID split of McMahan et al.), so each site sees ~2 digits.
 */
export function partitionIndices(labels: Uint8Array, sites: number, mode: Partition, seed = 42): number[][] {
  const random = seededRandom(seed);
  const order = Array.from({ length: labels.length }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  if (mode === 'iid') {
    const per = Math.floor(order.length / sites);
    return Array.from({ length: sites }, (_, s) => order.slice(s * per, (s + 1) * per));
  }
  order.sort((a, b) => labels[a] - labels[b] || a - b);
  const shardCount = sites * 2;
  const shardSize = Math.floor(order.length / shardCount);
  const shards = Array.from({ length: shardCount }, (_, k) =>
    order.slice(k * shardSize, (k + 1) * shardSize),
  );
  const shardOrder = shards.map((_, k) => k);
  for (let i = shardOrder.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shardOrder[i], shardOrder[j]] = [shardOrder[j], shardOrder[i]];
  }
  return Array.from({ length: sites }, (_, s) => [
    ...shards[shardOrder[2 * s]],
    ...shards[shardOrder[2 * s + 1]],
  ]);
}

/** Writes each site's partition as `<dir>/site-N/train-images-idx3-ubyte` (+ labels); returns the image paths. */
export async function writeSitePartitions(
  dir: string,
  sites: number,
  mode: Partition,
  examplesPerSite?: number,
): Promise<{ imagesPath: string; count: number }[]> {
  const train = await readMnist('train');
  const pixels = train.rows * train.cols;
  const parts = partitionIndices(train.labels, sites, mode);
  const out: { imagesPath: string; count: number }[] = [];
  for (const [s, indices] of parts.entries()) {
    const chosen = examplesPerSite ? indices.slice(0, examplesPerSite) : indices;
    const images = new Uint8Array(chosen.length * pixels);
    const labels = new Uint8Array(chosen.length);
    chosen.forEach((idx, i) => {
      images.set(train.images.subarray(idx * pixels, (idx + 1) * pixels), i * pixels);
      labels[i] = train.labels[idx];
    });
    const siteDir = join(dir, `site-${s + 1}`);
    await mkdir(siteDir, { recursive: true });
    const imagesPath = join(siteDir, 'train-images-idx3-ubyte');
    await writeIdx(
      imagesPath,
      join(siteDir, 'train-labels-idx1-ubyte'),
      images,
      labels,
      train.rows,
      train.cols,
    );
    out.push({ imagesPath, count: chosen.length });
  }
  return out;
}

// The fingerprint of a site's dataset: SHA-256 over a canonical manifest of what the site trains
// on (file names and sizes, example count, feature shape, label histogram, the seed of its
// hold-out split). It lets an experiment record say which data each round used, without any of it.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { canonicalJson } from '../../shared/protocol/index.ts';
import { datasetSeed } from './holdout.ts';
import type { LocalDataset } from './types.ts';

/** What the fingerprint is computed over: counts, names and hashes only, never an example. */
export interface DatasetManifest {
  /** The files read, by base name (the folder they sit in is the host's business), with their sizes. */
  files: { name: string; bytes: number }[];
  examples: number;
  featureShape: number[];
  /** Examples per label, smallest label first. */
  labels: { value: number; count: number }[];
  /** Seed of the train / hold-out split (a hash of the data): the same data gives the same split. */
  splitSeed: string;
}

/**
 * The manifest of `dataset`: its files' base names and sizes (stat'ed now; a file that cannot be
 * read any more counts as -1 bytes), example count, feature shape, label histogram and split seed.
 */
export async function datasetManifest(dataset: LocalDataset): Promise<DatasetManifest> {
  const files = await Promise.all(
    (dataset.files ?? []).map(async (file) => ({
      name: basename(file),
      bytes: await stat(file).then(
        (s) => s.size,
        () => -1,
      ),
    })),
  );
  const counts = new Map<number, number>();
  for (let i = 0; i < dataset.count; i++)
    counts.set(dataset.labels[i], (counts.get(dataset.labels[i]) ?? 0) + 1);
  return {
    files,
    examples: dataset.count,
    featureShape: [...dataset.featureShape],
    labels: [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([value, count]) => ({ value, count })),
    splitSeed: datasetSeed(dataset),
  };
}

/** SHA-256 (lower-case hex) of the manifest's canonical JSON. */
export function manifestFingerprint(manifest: DatasetManifest): string {
  return createHash('sha256').update(canonicalJson(manifest)).digest('hex');
}

/** The fingerprint of `dataset` (see `datasetManifest`). */
export async function datasetFingerprint(dataset: LocalDataset): Promise<string> {
  return manifestFingerprint(await datasetManifest(dataset));
}

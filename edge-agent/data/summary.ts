// Aggregate statistics of a local dataset, small whatever its size, for the coordinator to see
// what a site trains on (counts, label balance, feature ranges) without seeing any sample.
import { type DatasetSummary, type FeatureStats, SUMMARY_LIMITS } from '../../shared/protocol/index.ts';
import { sizeOf } from '../../shared/tensors/index.ts';
import type { LocalDataset } from './types.ts';

/** At most this many feature groups: wider data is summarised in contiguous groups. */
export const SUMMARY_MAX_FEATURE_GROUPS = SUMMARY_LIMITS.featureGroups;
/** At most this many distinct labels are counted one by one; the rest are counted together. */
export const SUMMARY_MAX_LABELS = SUMMARY_LIMITS.labels;
/** Below this many examples, per-feature statistics are withheld (see `summarizeDataset`). */
export const SUMMARY_MIN_EXAMPLES_FOR_FEATURE_STATS = 10;

/** Options of `summarizeDataset`. */
export interface SummaryOptions {
  /** Withhold feature statistics below this many examples. Default 10. */
  minExamplesForFeatureStats?: number;
}

export type { DatasetSummary, FeatureStats };

/**
 * Summarises `ds` in bounded size (at most 1024 feature groups and 1024 labels, whatever the
 * input): example count, feature shape, label histogram and per-feature min, max and mean.
 *
 * The summary holds aggregate statistics only, never a sample or a row: counts, and min, max
 * and mean over all examples. A min or max is still one example's value of one feature, and
 * with a handful of examples the means come close to the samples themselves, so below
 * `minExamplesForFeatureStats` examples (default 10) `featureStats` is null and only the counts
 * are reported.
 * @param opts.minExamplesForFeatureStats default 10
 */
export function summarizeDataset(ds: LocalDataset, opts: SummaryOptions = {}): DatasetSummary {
  if (!ds || !(ds.x instanceof Float32Array) || !(ds.labels instanceof Int32Array)) {
    throw new TypeError('summarizeDataset needs a LocalDataset');
  }
  const threshold = opts.minExamplesForFeatureStats ?? SUMMARY_MIN_EXAMPLES_FOR_FEATURE_STATS;
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new TypeError('minExamplesForFeatureStats must be a positive integer');
  }
  const features = sizeOf(ds.featureShape);
  // Only whole examples the buffers really hold are read, whatever `count` claims.
  const examples = Math.max(
    0,
    Math.min(ds.count, ds.labels.length, features > 0 ? Math.floor(ds.x.length / features) : 0),
  );

  const counts = new Map<number, number>();
  for (let i = 0; i < Math.min(ds.count, ds.labels.length); i++) {
    counts.set(ds.labels[i], (counts.get(ds.labels[i]) ?? 0) + 1);
  }
  const sorted = [...counts.entries()].sort((a, b) => a[0] - b[0]);
  const labels = sorted.slice(0, SUMMARY_MAX_LABELS).map(([value, count]) => ({ value, count }));
  const rest = sorted.slice(SUMMARY_MAX_LABELS);
  const otherLabels = { distinct: rest.length, examples: rest.reduce((n, [, c]) => n + c, 0) };

  let nonFiniteValues = 0;
  for (let k = 0; k < examples * features; k++) if (!Number.isFinite(ds.x[k])) nonFiniteValues++;

  let featureStats: FeatureStats | null = null;
  if (examples >= threshold && features > 0) {
    const groupSize = Math.ceil(features / SUMMARY_MAX_FEATURE_GROUPS);
    const groups = Math.ceil(features / groupSize);
    const min = new Float64Array(groups).fill(Number.POSITIVE_INFINITY);
    const max = new Float64Array(groups).fill(Number.NEGATIVE_INFINITY);
    const sum = new Float64Array(groups);
    const n = new Float64Array(groups);
    for (let i = 0; i < examples; i++) {
      const base = i * features;
      for (let g = 0; g < groups; g++) {
        const end = Math.min((g + 1) * groupSize, features);
        for (let f = g * groupSize; f < end; f++) {
          const v = ds.x[base + f];
          if (!Number.isFinite(v)) continue;
          if (v < min[g]) min[g] = v;
          if (v > max[g]) max[g] = v;
          sum[g] += v;
          n[g]++;
        }
      }
    }
    featureStats = {
      groupSize,
      groups,
      min: Array.from(min, (v, g) => (n[g] > 0 ? v : 0)),
      max: Array.from(max, (v, g) => (n[g] > 0 ? v : 0)),
      mean: Array.from(sum, (v, g) => (n[g] > 0 ? v / n[g] : 0)),
    };
  }
  return {
    examples,
    featureShape: [...ds.featureShape],
    features,
    labels,
    otherLabels,
    nonFiniteValues,
    featureStats,
  };
}

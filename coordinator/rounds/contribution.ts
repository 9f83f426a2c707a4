// How much one agent may count in a round: its weight is capped against what the sites sampled
// with it declared, its update is clipped against the norms of the round's first updates, and the
// round's metrics are medians. Together they bound what one enrolled but lying agent can do.

/** Robust-aggregation settings of a round (job options of the same names). */
export interface RobustnessSettings {
  /**
   * An agent's weight is at most this many times the lower median of the dataset sizes the agents
   * sampled for the round declared when they connected. 0 turns the cap off.
   */
  weightCapRatio: number;
  /**
   * Updates are clipped to this many times the lower median L2 norm of the round's first
   * `clipQuorum` updates. 0 turns clipping off.
   */
  clipFactor: number;
  /** How many updates set the round's clip norm (fewer when the round asks fewer agents). */
  clipQuorum: number;
}

/**
 * Defaults: weight at most 1.5× the median declared size, updates clipped to 1.5× the median norm
 * of the round's first 3. With n equal honest sites one agent then holds at most 1.5 / (n + 0.5)
 * of the weight and moves the model by at most that share of 1.5 median-sized updates.
 */
export const ROBUSTNESS_DEFAULTS: Readonly<RobustnessSettings> = Object.freeze({
  weightCapRatio: 1.5,
  clipFactor: 1.5,
  clipQuorum: 3,
});

/**
 * The lower median (element ⌊(n−1)/2⌋ of the sorted values): for n ≥ 3 a single extreme value
 * cannot move it, and for n = 2 it is the smaller value. NaN for no values.
 */
export function lowerMedian(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** The median (mean of the two middle values for an even count). NaN for no values. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The largest weight one agent may have in a round, from the dataset sizes the sampled agents
 * declared: `ratio × lowerMedian(declared)`, at least 1. Infinity when the cap is off or nothing
 * was declared.
 */
export function weightCap(declared: readonly number[], ratio: number): number {
  const usable = declared.filter((n) => Number.isFinite(n) && n > 0);
  if (ratio <= 0 || usable.length === 0) return Number.POSITIVE_INFINITY;
  return Math.max(1, Math.floor(ratio * lowerMedian(usable)));
}

/** The clip norm a round uses once its first updates are in: `factor × lowerMedian(norms)`. */
export function clipNormFrom(norms: readonly number[], factor: number): number | undefined {
  if (factor <= 0 || norms.length === 0) return undefined;
  const m = lowerMedian(norms);
  // An all-zero first set of updates (nothing trained) must not clip every later update to zero.
  return m > 0 ? factor * m : undefined;
}

/**
 * Per metric, the median of the values the participants reported: with an honest majority it
 * stays within the honest agents' values, whatever one agent reports.
 */
export function medianMetrics(reports: readonly Record<string, number>[]): Record<string, number> {
  const byName = new Map<string, number[]>();
  for (const metrics of reports) {
    for (const [name, value] of Object.entries(metrics)) {
      if (!Number.isFinite(value)) continue;
      const list = byName.get(name) ?? [];
      list.push(value);
      byName.set(name, list);
    }
  }
  return Object.fromEntries([...byName].map(([name, values]) => [name, median(values)]));
}

// Spots a site whose data looks unlike the others' before a job trains with it, from the summaries
// agents send (aggregate statistics only): a site whose feature values are scaled differently
// (pixels 0–255 where the others send 0–1) can ruin a model while its own metrics look fine.
import type { DatasetSummary } from '../../shared/protocol/index.ts';

/** How far a site's value range may be from the others' median range before it is flagged. */
export const SCALE_RATIO_LIMIT = 4;

/** Largest absolute feature value a summary shows, or undefined when it withholds feature statistics. */
function valueRange(s: DatasetSummary): number | undefined {
  const stats = s.featureStats;
  if (!stats) return undefined;
  let range = 0;
  for (let i = 0; i < stats.groups; i++)
    range = Math.max(range, Math.abs(stats.min[i]), Math.abs(stats.max[i]));
  return range;
}

function round3(x: number): string {
  return Number(x.toPrecision(3)).toString();
}

/**
 * The agents among `check` whose feature values span a range more than SCALE_RATIO_LIMIT times
 * larger or smaller than the median range of the other agents in `all` (at least two others are
 * needed to say what is usual), with a message saying so.
 */
export function dataMismatches(
  all: ReadonlyMap<string, DatasetSummary>,
  check: Iterable<string>,
): { agentId: string; message: string }[] {
  const ranges = new Map<string, number>();
  for (const [id, s] of all) {
    const range = valueRange(s);
    if (range !== undefined) ranges.set(id, range);
  }
  // Sorted once: the median of the others is then read off around the agent's own place, so a
  // check of every agent costs O(n log n), not a sort per agent (17 s at 10,000 agents).
  const sorted = [...ranges.values()].sort((a, b) => a - b);
  const out: { agentId: string; message: string }[] = [];
  for (const agentId of check) {
    const own = ranges.get(agentId);
    if (own === undefined) continue;
    const others = sorted.length - 1;
    if (others < 2) continue;
    const usual = medianWithout(sorted, own);
    if (usual <= 0 && own <= 0) continue;
    const ratio = usual > 0 ? own / usual : Number.POSITIVE_INFINITY;
    if (ratio > SCALE_RATIO_LIMIT || ratio < 1 / SCALE_RATIO_LIMIT) {
      out.push({
        agentId,
        message:
          `its feature values reach ${round3(own)} while the other ${others} sites' reach about ${round3(usual)}: ` +
          'the data looks scaled differently (0–255 against 0–1, say); check its preprocessing before trusting this job',
      });
    }
  }
  return out;
}

/**
 * `median` of the ascending `sorted` with one occurrence of `value` (which it holds) left out:
 * equal values are interchangeable, so which occurrence does not matter.
 */
function medianWithout(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  const at = lo;
  const n = sorted.length - 1;
  const get = (k: number): number => sorted[k < at ? k : k + 1];
  const mid = n >> 1;
  return n % 2 === 1 ? get(mid) : (get(mid - 1) + get(mid)) / 2;
}

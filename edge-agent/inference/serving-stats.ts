// Serving health per model version: request and error counts and a latency histogram of fixed
// buckets, counted as predictions finish and handed out (then reset) once per report.
import { HEALTH_LATENCY_BUCKETS_MS, type VersionHealth } from '../../shared/protocol/index.ts';

interface Counts {
  requests: number;
  errors: number;
  latency: number[];
}

/**
 * Counts the predictions of each model version. Only outcomes that say something about the
 * version count: an answer, or a failure on the server side (a model that cannot run, output
 * that is not finite). A caller's bad input is the caller's fault and is not counted.
 */
export class ServingStats {
  private counts = new Map<string, Counts & { name: string; version: number }>();

  /** Records one prediction of `name`@`version` that took `ms` and failed or not. */
  record(name: string, version: number, ms: number, failed: boolean): void {
    const key = `${name}@${version}`;
    let c = this.counts.get(key);
    if (!c) {
      c = {
        name,
        version,
        requests: 0,
        errors: 0,
        latency: new Array(HEALTH_LATENCY_BUCKETS_MS.length + 1).fill(0),
      };
      this.counts.set(key, c);
    }
    c.requests++;
    if (failed) c.errors++;
    const bucket = HEALTH_LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound);
    c.latency[bucket < 0 ? HEALTH_LATENCY_BUCKETS_MS.length : bucket]++;
  }

  /** What was counted since the last call, per version; the counts start again from zero. */
  take(): VersionHealth[] {
    const out = [...this.counts.values()].map((c) => ({ ...c, latency: [...c.latency] }));
    this.counts = new Map();
    return out;
  }

  /** Puts counts that could not be sent back, so the next report carries them. */
  restore(reports: readonly VersionHealth[]): void {
    for (const r of reports) {
      const key = `${r.name}@${r.version}`;
      const c = this.counts.get(key);
      if (!c) {
        this.counts.set(key, { ...r, latency: [...r.latency] });
        continue;
      }
      c.requests += r.requests;
      c.errors += r.errors;
      r.latency.forEach((n, i) => {
        c.latency[i] += n;
      });
    }
  }
}

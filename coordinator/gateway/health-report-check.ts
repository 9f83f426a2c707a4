// Serving-health reports are an agent's own word. The codec bounds each one (non-negative integer
// counts, errors within requests, a histogram of the fixed buckets adding up to the requests);
// this check bounds what one agent may send over time and refuses a report that names a version
// twice, so a crafted stream can neither flood the counters nor count one interval twice.
import type { ServingHealthBody } from '../../shared/protocol/index.ts';

/** How many serving-health reports one connection may send: a burst, then a steady rate. */
export const HEALTH_REPORT_LIMITS = {
  /** Reports accepted back to back. Default 10. */
  burst: 10,
  /** Reports a second after the burst. Default 10 (an agent's shortest interval is 100 ms). */
  perSecond: 10,
} as const;

export class HealthReportCheck {
  private tokens: number;
  private last: number;

  constructor(
    private readonly limits: { burst: number; perSecond: number } = HEALTH_REPORT_LIMITS,
    now = Date.now(),
  ) {
    this.tokens = limits.burst;
    this.last = now;
  }

  /** Why `report` is refused (undefined: it may be counted); a refused report costs nothing. */
  check(report: ServingHealthBody, now = Date.now()): string | undefined {
    this.tokens = Math.min(
      this.limits.burst,
      this.tokens + ((now - this.last) / 1000) * this.limits.perSecond,
    );
    this.last = now;
    if (this.tokens < 1) {
      return `more than ${this.limits.perSecond} serving-health reports a second; this one is not counted`;
    }
    const seen = new Set<string>();
    for (const v of report.versions) {
      const key = `${v.name}@${v.version}`;
      if (seen.has(key)) return `the report names ${key} twice; it is not counted`;
      seen.add(key);
    }
    this.tokens -= 1;
    return undefined;
  }
}

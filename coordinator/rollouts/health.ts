// Serving health of a wave: the reports of its agents added up, and judged against the limits.
import { HEALTH_LATENCY_BUCKETS_MS, type VersionHealth } from '../../shared/protocol/index.ts';
import type { AgentHealth, HealthSummary, RolloutPolicy } from './rollout-record.ts';

/** A sum that stops at the largest safe integer: an agent cannot overflow a counter. */
function addCapped(a: number, b: number): number {
  return Math.min(Number.MAX_SAFE_INTEGER, a + b);
}

/** Counts added up from serving-health reports. */
export class HealthCounter {
  requests = 0;
  errors = 0;
  readonly latency: number[] = new Array(HEALTH_LATENCY_BUCKETS_MS.length + 1).fill(0);

  /** A counter holding `saved` (as `snapshot` wrote it); a saved value of the wrong shape is ignored. */
  static from(saved: AgentHealth | undefined): HealthCounter {
    const c = new HealthCounter();
    if (saved && Array.isArray(saved.latency) && saved.latency.length === c.latency.length) c.add(saved);
    return c;
  }

  add(h: Pick<VersionHealth, 'requests' | 'errors' | 'latency'>): void {
    this.requests = addCapped(this.requests, h.requests);
    this.errors = Math.min(this.requests, addCapped(this.errors, h.errors));
    h.latency.forEach((n, i) => {
      this.latency[i] = addCapped(this.latency[i], n);
    });
  }

  snapshot(): AgentHealth {
    return { requests: this.requests, errors: this.errors, latency: [...this.latency] };
  }
}

/** The upper bound (ms) of the bucket holding the 99th percentile; -1 above the last bound. */
export function p99Of(latency: readonly number[]): number | null {
  const total = latency.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(total * 0.99);
  let seen = 0;
  for (let i = 0; i < latency.length; i++) {
    seen += latency[i];
    if (seen >= rank) return i < HEALTH_LATENCY_BUCKETS_MS.length ? HEALTH_LATENCY_BUCKETS_MS[i] : -1;
  }
  return -1;
}

/** The summary of `counters` together. */
export function summarize(counters: readonly HealthCounter[]): HealthSummary {
  const sum = new HealthCounter();
  for (const c of counters) sum.add(c);
  return {
    requests: sum.requests,
    errors: sum.errors,
    errorRate: sum.requests === 0 ? 0 : sum.errors / sum.requests,
    p99Ms: p99Of(sum.latency),
    latency: [...sum.latency],
  };
}

/** Why a summary breaks the limits, or undefined when it is within them. */
export function healthViolation(h: HealthSummary, policy: RolloutPolicy): string | undefined {
  if (h.requests === 0) return undefined;
  if (h.errorRate > policy.maxErrorRate) {
    return `error rate ${h.errorRate.toFixed(4)} (${h.errors} of ${h.requests} predictions failed) is above maxErrorRate ${policy.maxErrorRate}`;
  }
  if (h.p99Ms !== null && (h.p99Ms === -1 || h.p99Ms > policy.maxP99Ms)) {
    const p99 =
      h.p99Ms === -1
        ? `above ${HEALTH_LATENCY_BUCKETS_MS[HEALTH_LATENCY_BUCKETS_MS.length - 1]} ms`
        : `${h.p99Ms} ms`;
    return `p99 latency ${p99} is above maxP99Ms ${policy.maxP99Ms}`;
  }
  return undefined;
}

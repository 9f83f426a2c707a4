// The pure parts of rollouts: wave assignment, request checks, health summaries and limits, and
// the agent's serving counters.
import { describe, expect, it } from 'vitest';
import { HealthCounter, healthViolation, p99Of, summarize } from '../../coordinator/rollouts/health.ts';
import { assignWaves, parseRolloutRequest, parseWaves } from '../../coordinator/rollouts/index.ts';
import { ServingStats } from '../../edge-agent/inference/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';
import { HEALTH_LATENCY_BUCKETS_MS } from '../../shared/protocol/index.ts';

const policy = { healthWindowSec: 0, maxErrorRate: 0.1, maxP99Ms: 100, minRequests: 0 };

describe('waves', () => {
  it('reach the first ceil(p·n/100) agents by id, each agent once', () => {
    const agents = Array.from({ length: 20 }, (_, i) => `agent-${String(i).padStart(2, '0')}`).reverse();
    const waves = assignWaves(agents, [10, 50, 100]);
    expect(waves.map((w) => w.length)).toEqual([2, 8, 10]);
    expect(waves.flat()).toEqual([...agents].sort());
    expect(assignWaves(['a'], [10, 50, 100])).toEqual([['a'], [], []]);
  });

  it('must increase, be whole percentages and end at 100', () => {
    expect(parseWaves([10, 50, 100])).toEqual([10, 50, 100]);
    for (const bad of [[], [50, 50, 100], [10, 50], [0, 100], [10.5, 100], 'all', Array(11).fill(100)]) {
      expect(() => parseWaves(bad)).toThrow(expect.objectContaining({ code: 'LOOM_ERR_INVALID_ARGUMENT' }));
    }
  });

  it('come from a request with defaults for what it leaves out', () => {
    const req = parseRolloutRequest({ model: 'm', version: 2, target: { labels: { site: 'a' } } });
    expect(req).toMatchObject({
      waves: [100],
      policy: { healthWindowSec: 60, maxErrorRate: 0.01, minRequests: 0 },
    });
    for (const body of [
      { model: 'm', version: 2, target: {} },
      { model: 'm', version: 2, target: { agents: [] } },
      { model: 'm', version: 2, target: { all: false } },
      { model: 'm', version: 2, target: { labels: {} } },
      { model: 'm', version: 0, target: { all: true } },
      { model: 'm', version: 2, target: { all: true }, minRequests: -1 },
      { model: 'm', version: 2, target: { all: true }, maxP99Ms: 0 },
    ]) {
      let err: unknown;
      try {
        parseRolloutRequest(body);
      } catch (e) {
        err = e;
      }
      expect(isLoomError(err, 'LOOM_ERR_INVALID_ARGUMENT'), JSON.stringify(body)).toBe(true);
    }
  });
});

describe('wave health', () => {
  const histogram = (bucket: number, n: number): number[] =>
    HEALTH_LATENCY_BUCKETS_MS.concat([0]).map((_, i) => (i === bucket ? n : 0));

  it('takes the p99 as the upper bound of its bucket', () => {
    expect(p99Of(histogram(3, 100))).toBe(HEALTH_LATENCY_BUCKETS_MS[3]);
    const mixed = histogram(0, 98);
    mixed[6] = 2;
    expect(p99Of(mixed)).toBe(HEALTH_LATENCY_BUCKETS_MS[6]);
    expect(p99Of(histogram(HEALTH_LATENCY_BUCKETS_MS.length, 5))).toBe(-1);
    expect(p99Of(histogram(0, 0))).toBeNull();
  });

  it('adds agents up and names the limit a wave breaks', () => {
    const a = new HealthCounter();
    a.add({ requests: 10, errors: 0, latency: histogram(2, 10) });
    const b = new HealthCounter();
    b.add({ requests: 10, errors: 5, latency: histogram(2, 10) });
    const h = summarize([a, b]);
    expect(h).toMatchObject({ requests: 20, errors: 5, errorRate: 0.25 });
    expect(healthViolation(h, policy)).toMatch(
      /error rate 0.2500 \(5 of 20 predictions failed\) is above maxErrorRate 0.1/,
    );
    const slow = new HealthCounter();
    slow.add({ requests: 10, errors: 0, latency: histogram(9, 10) });
    expect(healthViolation(summarize([slow]), policy)).toMatch(/p99 latency 1000 ms is above maxP99Ms 100/);
    expect(healthViolation(summarize([a]), policy)).toBeUndefined();
    expect(healthViolation(summarize([]), policy)).toBeUndefined();
  });
});

describe('serving counters', () => {
  it('count per version, put each latency in its bucket, and start again after a report', () => {
    const stats = new ServingStats();
    stats.record('m', 1, 0.4, false);
    stats.record('m', 1, 30, true);
    stats.record('m', 2, 60_000, false);
    const [v1, v2] = stats.take();
    expect(v1).toMatchObject({ name: 'm', version: 1, requests: 2, errors: 1 });
    expect(v1.latency[0]).toBe(1);
    expect(v1.latency[HEALTH_LATENCY_BUCKETS_MS.indexOf(50)]).toBe(1);
    expect(v2.latency.at(-1)).toBe(1);
    expect(stats.take()).toEqual([]);
    stats.restore([v1]);
    stats.record('m', 1, 1, false);
    expect(stats.take()[0]).toMatchObject({ requests: 3, errors: 1 });
  });
});

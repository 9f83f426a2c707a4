// The pure parts of rollouts: wave assignment, request checks, health summaries and limits, and
// the agent's serving counters.
import { describe, expect, it } from 'vitest';
import { HealthReportCheck } from '../../coordinator/gateway/index.ts';
import { HealthCounter, healthViolation, p99Of, summarize } from '../../coordinator/rollouts/health.ts';
import {
  assignWaves,
  PROMOTION_ROLLOUT_DEFAULTS,
  parseRolloutPlan,
  parseRolloutRequest,
  parseWaves,
  resolveRolloutPlan,
} from '../../coordinator/rollouts/index.ts';
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
      { model: 'm', version: 2, target: { all: true }, failQuorum: 1.5 },
      { model: 'm', version: 2, target: { all: true }, failQuorum: -0.1 },
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

describe('promotion rollout plans', () => {
  it('take each field from the first plan that sets it, then the exported defaults', () => {
    const request = parseRolloutPlan({ healthWindowSec: 5, target: { labels: { site: 'a' } } });
    const policy = parseRolloutPlan({ waves: [10, 100], healthWindowSec: 30, failQuorum: 0.2 });
    expect(resolveRolloutPlan('m', 3, request, policy)).toEqual({
      model: 'm',
      version: 3,
      target: { labels: { site: 'a' } },
      waves: [10, 100],
      policy: {
        healthWindowSec: 5,
        maxErrorRate: PROMOTION_ROLLOUT_DEFAULTS.maxErrorRate,
        maxP99Ms: PROMOTION_ROLLOUT_DEFAULTS.maxP99Ms,
        minRequests: PROMOTION_ROLLOUT_DEFAULTS.minRequests,
        failQuorum: 0.2,
      },
    });
    expect(resolveRolloutPlan('m', 3, undefined, undefined)).toMatchObject({
      target: { all: true },
      waves: [100],
      policy: { healthWindowSec: 60, failQuorum: 0.5 },
    });
  });

  it('are checked like a rollout request, naming the field under its plan', () => {
    for (const [plan, field] of [
      [{ waves: [50] }, 'rollout.waves'],
      [{ target: { all: false } }, 'rollout.target.all'],
      [{ maxErrorRate: 2 }, 'rollout.maxErrorRate'],
      [{ model: 'm' }, 'rollout.model'],
      ['fast', 'rollout'],
    ] as const) {
      expect(() => parseRolloutPlan(plan)).toThrow(
        expect.objectContaining({ code: 'LOOM_ERR_INVALID_ARGUMENT', details: { field } }),
      );
    }
  });
});

describe('saved health counts', () => {
  it('come back from a snapshot as they were, and a counter never passes the largest safe integer', () => {
    const c = new HealthCounter();
    const latency = new Array(HEALTH_LATENCY_BUCKETS_MS.length + 1).fill(0);
    latency[3] = 7;
    c.add({ requests: 7, errors: 2, latency });
    const again = HealthCounter.from(JSON.parse(JSON.stringify(c.snapshot())));
    expect(again.snapshot()).toEqual(c.snapshot());
    expect(HealthCounter.from({ requests: 5, errors: 1, latency: [5] }).requests).toBe(0);
    const big = new Array(latency.length).fill(0);
    big[0] = 1e9;
    for (let i = 0; i < 10; i++)
      again.add({ requests: Number.MAX_SAFE_INTEGER / 2, errors: 0, latency: big });
    expect(again.requests).toBe(Number.MAX_SAFE_INTEGER);
    expect(again.errors).toBeLessThanOrEqual(again.requests);
  });
});

describe('serving-health report check', () => {
  const body = (versions: number[]) => ({
    intervalMs: 100,
    versions: versions.map((version) => ({
      name: 'm',
      version,
      requests: 0,
      errors: 0,
      latency: new Array(HEALTH_LATENCY_BUCKETS_MS.length + 1).fill(0),
    })),
  });

  it('takes a burst, then a steady rate, and refuses a version named twice', () => {
    const check = new HealthReportCheck({ burst: 3, perSecond: 2 }, 0);
    expect([0, 0, 0, 0].map(() => check.check(body([1]), 0))).toEqual([
      undefined,
      undefined,
      undefined,
      expect.stringMatching(/more than 2 serving-health reports a second/),
    ]);
    expect(check.check(body([1]), 500)).toBeUndefined();
    expect(check.check(body([1]), 600)).toMatch(/a second/);
    expect(check.check(body([1, 2, 1]), 5000)).toMatch(/names m@1 twice/);
    expect(check.check(body([1, 2]), 5000)).toBeUndefined();
  });
});

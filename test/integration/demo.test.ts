// `loom demo --json` as a script runs it: a real coordinator and agent processes on small MNIST
// partitions, through the whole lifecycle (train, evaluate, promote through the gate, roll out in two
// waves under inference traffic, infer), with the figures of each phase in its JSON lines.
import { describe, expect, it } from 'vitest';
import { loomAsync } from '../helpers/loom-cli.ts';

interface Evaluation {
  version: number;
  accuracy: number;
  loss: number;
  numExamples: number;
  sites: { name: string; accuracy: number; loss: number; numExamples: number }[];
}

interface Rollout {
  state: string;
  totalMs: number;
  predictionsSent: number;
  waves: {
    percent: number;
    agents: number;
    state: string;
    durationMs: number;
    requests: number;
    errorRate: number;
  }[];
}

describe('loom demo', () => {
  it('trains, evaluates, promotes through the gate, rolls out in two waves and infers', {
    timeout: 300_000,
  }, async () => {
    const r = await loomAsync([
      'demo',
      '--agents',
      '2',
      '--rounds',
      '2',
      // Enough that two rounds pass the demo's gate (hold-out accuracy 0.5) whatever the shuffle.
      '--examples-per-agent',
      '2000',
      '--json',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => 'round' in l).map((l) => l.round)).toEqual([1, 2]);
    const final = lines.at(-1) as {
      modelVersion: number;
      servedVersion: number;
      predicted: number;
      label: number;
      evaluation: Evaluation;
      gate: { passed: boolean; reasons: string[]; policy: { metric: string; min: number } };
      rollout: Rollout;
      totalMs: number;
    };
    expect(final.modelVersion).toBe(3);
    // The agent serves the version the rollout took to it.
    expect(final.servedVersion).toBe(3);
    expect(final.predicted).toBeGreaterThanOrEqual(0);

    // Evaluated on each site's hold-out share (10% of its 2,000 examples), aggregated by examples.
    const e = final.evaluation;
    expect(lines).toContainEqual({ evaluation: e });
    expect(e.version).toBe(3);
    expect(e.sites.map((s) => [s.name, s.numExamples])).toEqual([
      ['site-1', 200],
      ['site-2', 200],
    ]);
    expect(e.numExamples).toBe(400);
    const weighted = e.sites.reduce((sum, s) => sum + s.accuracy * s.numExamples, 0) / e.numExamples;
    expect(e.accuracy).toBeCloseTo(weighted, 6);
    expect(e.loss).toBeGreaterThan(0);

    expect(final.gate).toMatchObject({ passed: true, reasons: [], policy: { metric: 'accuracy', min: 0.5 } });

    // Two waves of one agent each, each with predictions in its health window and no errors.
    const ro = final.rollout;
    expect(ro.state).toBe('completed');
    expect(ro.waves.map((w) => [w.percent, w.agents, w.state])).toEqual([
      [50, 1, 'passed'],
      [100, 1, 'passed'],
    ]);
    for (const w of ro.waves) {
      expect(w.requests).toBeGreaterThanOrEqual(5);
      expect(w.errorRate).toBe(0);
      expect(w.durationMs).toBeGreaterThan(0);
    }
    expect(ro.totalMs).toBeGreaterThanOrEqual(ro.waves[0].durationMs);
    expect(ro.predictionsSent).toBeGreaterThan(0);
  });
});

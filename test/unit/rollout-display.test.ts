// How the operator CLI writes a rollout for people: each wave's agents by state, its health against
// the limits, the time left in its health window, and the reasons of a gate refusal.
import { describe, expect, it } from 'vitest';
import { gateReasonsOf } from '../../cli/operator/lifecycle-commands.ts';
import { agentCounts, healthText, waveLine, windowText } from '../../cli/operator/rollout-display.ts';
import type { RolloutView } from '../../shared/api-client/index.ts';

const T0 = Date.parse('2026-12-02T10:00:00.000Z');
const at = (ms: number): string => new Date(T0 + ms).toISOString();

function rollout(): RolloutView {
  return {
    id: 'rollout-1',
    model: 'digits',
    version: 3,
    target: { all: true },
    policy: { healthWindowSec: 10, maxErrorRate: 0.01, maxP99Ms: 500, minRequests: 20 },
    state: 'running',
    currentWave: 1,
    waves: [
      {
        percent: 50,
        agents: ['a1', 'a2'],
        state: 'passed',
        startedAt: at(0),
        observingSince: at(1000),
        endedAt: at(11_500),
        health: { requests: 40, errors: 0, errorRate: 0, p99Ms: 25, latency: [] },
        note: 'healthy',
      },
      {
        percent: 100,
        agents: ['a3', 'a4', 'a5'],
        state: 'running',
        startedAt: at(11_500),
        observingSince: at(12_000),
        health: { requests: 7, errors: 1, errorRate: 1 / 7, p99Ms: -1, latency: [] },
      },
    ],
    agents: [
      { id: 'a1', wave: 0, previousVersion: 2, state: 'active', updatedAt: at(500) },
      { id: 'a2', wave: 0, previousVersion: 2, state: 'active', updatedAt: at(600) },
      { id: 'a3', wave: 1, previousVersion: 2, state: 'active', updatedAt: at(11_800) },
      { id: 'a4', wave: 1, previousVersion: 2, state: 'transferring', updatedAt: at(11_600) },
      {
        id: 'a5',
        wave: 1,
        previousVersion: null,
        state: 'failed',
        reason: 'bad chunk',
        updatedAt: at(11_700),
      },
    ],
    createdAt: at(0),
    createdBy: 'admin',
    updatedAt: at(12_000),
  };
}

describe('rollout display', () => {
  it("counts a wave's agents by state, along the way first", () => {
    expect(agentCounts(rollout(), 0)).toBe('2 active');
    expect(agentCounts(rollout(), 1)).toBe('1 transferring, 1 active, 1 failed');
  });

  it('gives the health so far against the limits', () => {
    const r = rollout();
    expect(healthText(r.waves[0].health, r.policy)).toBe(
      '40 requests (min 20), errors 0% (max 1%), p99 25 ms (max 500 ms)',
    );
    expect(healthText(r.waves[1].health, r.policy)).toMatch(
      /^7 requests \(min 20\), errors 14\.3% .* p99 >\d+ ms/,
    );
    expect(healthText(undefined, { ...r.policy, minRequests: 0 })).toBe(
      '0 requests, errors - (max 1%), p99 - (max 500 ms)',
    );
  });

  it('says the time left in the health window of the wave being watched', () => {
    const r = rollout();
    expect(windowText(r, r.waves[1], T0 + 15_000)).toBe('7.0 s left in the health window');
    expect(windowText(r, r.waves[1], T0 + 30_000)).toBe('health window over, judging');
    expect(windowText({ ...r, state: 'paused' }, r.waves[1], T0 + 15_000)).toBe('paused');
    expect(windowText(r, { ...r.waves[1], observingSince: undefined }, T0)).toBe(
      'waiting for its agents to run the version',
    );
  });

  it('writes a finished wave with its time, and a running one with the time left when live', () => {
    const r = rollout();
    expect(waveLine(r, 0)).toBe(
      'wave 1/2  50%  passed  2 agents: 2 active  health: 40 requests (min 20), errors 0% (max 1%), p99 25 ms (max 500 ms)  11.5 s  (healthy)',
    );
    expect(waveLine(r, 1, T0 + 15_000)).toMatch(
      /^wave 2\/2 {2}100% {2}running {2}3 agents: .* {2}7\.0 s left in the health window$/,
    );
    expect(waveLine(r, 1)).not.toMatch(/left/);
  });

  it('reads the reasons out of a gate refusal', () => {
    expect(
      gateReasonsOf('digits version 3 may not become production: accuracy 0.2 is low; loss too'),
    ).toEqual(['accuracy 0.2 is low', 'loss too']);
    expect(gateReasonsOf('something else')).toEqual(['something else']);
  });
});

// The promotion gate on its own: bounds on the latest evaluation, and the regression against
// production recomputed over the agents both evaluations share.
import { describe, expect, it } from 'vitest';
import {
  type GateEvaluation,
  gateFigure,
  gateReasons,
  parsePromotionPolicy,
} from '../../coordinator/lifecycle/index.ts';

function evaluation(id: string, version: number, sites: [string, number, number, number][]): GateEvaluation {
  const results = sites.map(([agentId, numExamples, accuracy, loss]) => ({
    agentId,
    numExamples,
    accuracy,
    loss,
  }));
  const n = results.reduce((s, r) => s + r.numExamples, 0);
  return {
    id,
    version,
    results,
    aggregate: {
      numExamples: n,
      accuracy: results.reduce((s, r) => s + r.accuracy * r.numExamples, 0) / n,
      loss: results.reduce((s, r) => s + r.loss * r.numExamples, 0) / n,
    },
  };
}

describe('gateReasons', () => {
  it('passes a version that meets the minimum, and names the value and the bound when it does not', () => {
    const e = evaluation('e1', 5, [['a', 100, 0.9, 0.3]]);
    expect(gateReasons({ metric: 'accuracy', min: 0.85 }, e)).toEqual([]);
    expect(gateReasons({ metric: 'accuracy', min: 0.95 }, e)).toEqual([
      "accuracy 0.9000 is below the policy's min 0.9500 (evaluation e1, 100 hold-out examples)",
    ]);
    expect(gateReasons({ metric: 'loss', max: 0.2 }, e)[0]).toMatch(
      /loss 0\.3000 is above the policy's max 0\.2000/,
    );
  });

  it('judges by the worse of the capped weighted aggregate and the median across sites', () => {
    const e = evaluation('e2', 5, [
      ['a', 100, 0.7, 0.5],
      ['b', 100, 0.7, 0.5],
      ['liar', 150, 1, 0],
    ]);
    e.aggregate!.median = { accuracy: 0.7, loss: 0.5 };
    // The weighted figure (0.83) passes 0.8; the median (0.7) does not, and the reason says so.
    expect(e.aggregate!.accuracy).toBeGreaterThan(0.8);
    expect(gateFigure(e.aggregate!, 'accuracy')).toBe(0.7);
    expect(gateFigure(e.aggregate!, 'loss')).toBe(0.5);
    expect(gateReasons({ metric: 'accuracy', min: 0.8 }, e)).toEqual([
      "accuracy 0.7000 (the median across sites) is below the policy's min 0.8000 (evaluation e2, 350 hold-out examples)",
    ]);
    expect(gateReasons({ metric: 'accuracy', min: 0.65 }, e)).toEqual([]);
  });

  it('refuses a version without a completed evaluation', () => {
    expect(gateReasons({ metric: 'accuracy' }, undefined)[0]).toMatch(/no completed federated evaluation/);
  });

  it('compares with production over the agents both were evaluated on only', () => {
    // Site d, where production did badly, is not in the candidate's evaluation: it must not flatter it.
    const production = evaluation('p', 2, [
      ['b', 100, 0.9, 0.2],
      ['c', 100, 0.9, 0.2],
      ['d', 1000, 0.1, 3],
    ]);
    const candidate = evaluation('c', 3, [
      ['a', 1000, 0.99, 0.01],
      ['b', 100, 0.8, 0.4],
      ['c', 100, 0.8, 0.4],
    ]);
    // Overall the candidate looks far better (0.97 against 0.24), but on b and c it lost 0.1.
    const reasons = gateReasons({ metric: 'accuracy', maxRegression: 0.05 }, candidate, {
      version: 2,
      evaluation: production,
    });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(
      /accuracy 0\.8000 against production version 2's 0\.9000 on the same 2 agents/,
    );
    expect(reasons[0]).toMatch(/regression of 0\.1000, more than the policy's maxRegression 0\.0500/);
    expect(
      gateReasons({ metric: 'accuracy', maxRegression: 0.15 }, candidate, {
        version: 2,
        evaluation: production,
      }),
    ).toEqual([]);
    // For loss, a higher value is the regression.
    expect(
      gateReasons({ metric: 'loss', maxRegression: 0.1 }, candidate, {
        version: 2,
        evaluation: production,
      })[0],
    ).toMatch(/loss 0\.4000 against production version 2's 0\.2000/);
  });

  it('refuses when production cannot be compared: no evaluation, or no agent in common', () => {
    const candidate = evaluation('c', 3, [['a', 10, 0.9, 0.1]]);
    expect(
      gateReasons({ metric: 'accuracy', maxRegression: 0 }, candidate, {
        version: 2,
        evaluation: undefined,
      })[0],
    ).toMatch(/production version 2 has no completed federated evaluation/);
    expect(
      gateReasons({ metric: 'accuracy', maxRegression: 0 }, candidate, {
        version: 2,
        evaluation: evaluation('p', 2, [['z', 10, 0.5, 1]]),
      })[0],
    ).toMatch(/share no agent/);
  });
});

describe('parsePromotionPolicy', () => {
  it('takes a policy and refuses what does not fit its metric', () => {
    expect(
      parsePromotionPolicy({ metric: 'loss', max: 0.5, maxRegression: 0.1, stageOnComplete: 'staging' }),
    ).toEqual({
      metric: 'loss',
      max: 0.5,
      maxRegression: 0.1,
      stageOnComplete: 'staging',
    });
    expect(() => parsePromotionPolicy({ metric: 'loss', min: 0.5 })).toThrow(/min is for accuracy/);
    expect(() => parsePromotionPolicy({ metric: 'accuracy', maxRegression: -1 })).toThrow(/maxRegression/);
    expect(() => parsePromotionPolicy({ metric: 'accuracy', extra: 1 })).toThrow(
      /extra is not a known field/,
    );
    expect(() => parsePromotionPolicy(null)).toThrow(
      expect.objectContaining({ code: 'LOOM_ERR_INVALID_ARGUMENT' }),
    );
  });
});

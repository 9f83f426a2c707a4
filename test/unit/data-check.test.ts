// The check that flags a site whose data is scaled unlike the others' before a job trains with it.
import { describe, expect, it } from 'vitest';
import { dataMismatches, SCALE_RATIO_LIMIT } from '../../coordinator/jobs/index.ts';
import { median } from '../../coordinator/rounds/index.ts';
import type { DatasetSummary } from '../../shared/protocol/index.ts';

/** A summary whose feature values reach `range` (two feature groups). */
function summary(range: number | null): DatasetSummary {
  return {
    examples: 100,
    featureShape: [2],
    features: 2,
    labels: [{ value: 0, count: 100 }],
    otherLabels: { distinct: 0, examples: 0 },
    nonFiniteValues: 0,
    featureStats:
      range === null
        ? null
        : { groupSize: 1, groups: 2, min: [0, -range / 2], max: [range / 3, range], mean: [0, 0] },
  };
}

/** The definition, agent by agent: the median of every other site's range. */
function naiveMismatches(ranges: Map<string, number | null>): string[] {
  const known = [...ranges].filter((e): e is [string, number] => e[1] !== null);
  return known
    .filter(([id, own]) => {
      const others = known.filter(([other]) => other !== id).map(([, r]) => r);
      if (others.length < 2) return false;
      const usual = median(others);
      if (usual <= 0 && own <= 0) return false;
      const ratio = usual > 0 ? own / usual : Number.POSITIVE_INFINITY;
      return ratio > SCALE_RATIO_LIMIT || ratio < 1 / SCALE_RATIO_LIMIT;
    })
    .map(([id]) => id);
}

describe('data mismatch check', () => {
  it('flags the one site whose pixels are 0–255 among sites sending 0–1, naming both ranges', () => {
    const all = new Map([
      ['a', summary(1)],
      ['b', summary(1)],
      ['c', summary(0.98)],
      ['d', summary(255)],
      ['e', summary(null)],
    ]);
    const found = dataMismatches(all, all.keys());
    expect(found.map((f) => f.agentId)).toEqual(['d']);
    expect(found[0].message).toMatch(/reach 255 while the other 3 sites' reach about 1:/);
  });

  it('agrees with the median of the other sites taken one site at a time', () => {
    let seed = 7;
    const random = (): number => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let trial = 0; trial < 200; trial++) {
      const ranges = new Map<string, number | null>();
      const n = 1 + Math.floor(random() * 12);
      for (let i = 0; i < n; i++) {
        const pick = random();
        // Repeated values, zeros, withheld statistics and outliers both ways.
        const range =
          pick < 0.1
            ? null
            : pick < 0.2
              ? 0
              : pick < 0.5
                ? 1
                : pick < 0.8
                  ? random() * 2
                  : random() < 0.5
                    ? 255
                    : 0.01;
        ranges.set(`agent-${i}`, range);
      }
      const all = new Map([...ranges].map(([id, r]) => [id, summary(r)]));
      const found = dataMismatches(all, all.keys()).map((f) => f.agentId);
      expect(found).toEqual(naiveMismatches(ranges));
    }
  });
});

// Tests of streaming aggregation: weighted averages, update rejection, engine agreement, tensor hygiene.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type Aggregator,
  type AggregatorOptions,
  applyAverageDelta,
  createAggregationEngine,
  ENGINE_NAMES,
  type EngineName,
  l2Norm,
  type RejectionReason,
} from '../../coordinator/aggregation/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { isLoomError, type LoomError, type LoomErrorCode } from '../../shared/errors/index.ts';
import type { WeightSpec, WeightTensor } from '../../shared/tensors/index.ts';

beforeAll(async () => {
  await initCompute();
});

function spec(name: string, shape: number[]): WeightSpec {
  return { name, shape, dtype: 'float32' };
}

function tensor(s: WeightSpec, values: ArrayLike<number>): WeightTensor {
  return { name: s.name, shape: [...s.shape], dtype: 'float32', data: Float32Array.from(values) };
}

function size(s: WeightSpec): number {
  return s.shape.reduce((a, b) => a * b, 1);
}

/** Deterministic pseudo-random numbers (mulberry32) so failures reproduce. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomUpdate(specs: readonly WeightSpec[], next: () => number): WeightTensor[] {
  return specs.map((s) =>
    tensor(
      s,
      Array.from({ length: size(s) }, () => (next() - 0.5) * 0.2),
    ),
  );
}

/** The weighted average in float64, the reference both engines are held to. */
function referenceAverage(updates: readonly WeightTensor[][], weights: readonly number[]): Float64Array[] {
  const total = weights.reduce((a, b) => a + b, 0);
  return updates[0].map((t, i) => {
    const out = new Float64Array(t.data.length);
    updates.forEach((u, c) => {
      for (let j = 0; j < out.length; j++) out[j] += (weights[c] * u[i].data[j]) / total;
    });
    return out;
  });
}

function maxAbsDiff(a: readonly { data: ArrayLike<number> }[], b: readonly ArrayLike<number>[]): number {
  let worst = 0;
  a.forEach((t, i) => {
    for (let j = 0; j < t.data.length; j++) worst = Math.max(worst, Math.abs(t.data[j] - b[i][j]));
  });
  return worst;
}

/** The first place where two weight lists differ bit for bit, or undefined (toEqual is slow on big arrays). */
function firstDifference(a: readonly WeightTensor[], b: readonly WeightTensor[]): string | undefined {
  if (a.length !== b.length) return `${a.length} tensors vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (a[i].name !== b[i].name || String(a[i].shape) !== String(b[i].shape)) return `tensor ${i} spec`;
    const x = Buffer.from(a[i].data.buffer, a[i].data.byteOffset, a[i].data.byteLength);
    const y = Buffer.from(b[i].data.buffer, b[i].data.byteOffset, b[i].data.byteLength);
    if (!x.equals(y)) return `values of "${a[i].name}"`;
  }
  return undefined;
}

/** Runs `fn` and returns the LoomError it throws, failing the test if it throws anything else. */
function loomError(fn: () => unknown, code: LoomErrorCode): LoomError {
  try {
    fn();
  } catch (err) {
    if (!isLoomError(err)) throw err;
    expect(err.code).toBe(code);
    return err;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

function aggregate(
  engine: EngineName,
  specs: readonly WeightSpec[],
  updates: readonly (readonly [WeightTensor[], number])[],
  options?: AggregatorOptions,
): WeightTensor[] {
  const aggregator = createAggregationEngine(engine).createAggregator(specs, options);
  try {
    for (const [update, weight] of updates) aggregator.fold(update, weight);
    return aggregator.average();
  } finally {
    aggregator.dispose();
  }
}

const SMALL = [spec('dense/kernel', [2, 2]), spec('dense/bias', [3])];

describe.each(ENGINE_NAMES)('the %s engine', (engine) => {
  const create = (specs: readonly WeightSpec[], options?: AggregatorOptions): Aggregator =>
    createAggregationEngine(engine).createAggregator(specs, options);

  it('reports its own name', () => {
    expect(createAggregationEngine(engine).name).toBe(engine);
  });

  it('computes the exact weighted average of hand-computed updates', () => {
    const aggregator = create(SMALL);
    aggregator.fold([tensor(SMALL[0], [1, 2, 3, 4]), tensor(SMALL[1], [0, 0, 0])], 1);
    aggregator.fold([tensor(SMALL[0], [4, 5, 6, 7]), tensor(SMALL[1], [3, 6, 9])], 2);
    expect(aggregator.count).toBe(2);
    expect(aggregator.totalWeight).toBe(3);
    const average = aggregator.average();
    aggregator.dispose();
    // (1·[1,2,3,4] + 2·[4,5,6,7]) / 3 and (1·[0,0,0] + 2·[3,6,9]) / 3
    expect(average).toEqual([
      { name: 'dense/kernel', shape: [2, 2], dtype: 'float32', data: new Float32Array([3, 4, 5, 6]) },
      { name: 'dense/bias', shape: [3], dtype: 'float32', data: new Float32Array([2, 4, 6]) },
    ]);
  });

  it('matches a float64 reference on a model larger than one staging chunk', () => {
    const specs = [spec('a', [300, 300]), spec('b', [40_001]), spec('c', [7])];
    const next = random(7);
    const updates = Array.from({ length: 6 }, () => randomUpdate(specs, next));
    const weights = [1, 3, 0.5, 12, 7, 2.25];
    const average = aggregate(
      engine,
      specs,
      updates.map((u, c) => [u, weights[c]] as const),
    );
    expect(maxAbsDiff(average, referenceAverage(updates, weights))).toBeLessThan(1e-6);
  });

  it('accepts huge finite values whose float32 sum or square sum would overflow', () => {
    const specs = [spec('w', [2])];
    const huge = [tensor(specs[0], [3e38, 3e38])];
    const average = aggregate(engine, specs, [[huge, 1]], { maxNorm: 1e39 });
    expect([...average[0].data]).toEqual([Math.fround(3e38), Math.fround(3e38)]);
  });

  it('returns averages that do not alias its running sum', () => {
    const aggregator = create(SMALL);
    aggregator.fold([tensor(SMALL[0], [1, 2, 3, 4]), tensor(SMALL[1], [5, 6, 7])], 1);
    const first = aggregator.average();
    first[0].data.fill(99);
    expect(aggregator.average()[0].data).toEqual(new Float32Array([1, 2, 3, 4]));
    aggregator.dispose();
  });

  it('refuses to average before any update is folded', () => {
    const aggregator = create(SMALL);
    expect(loomError(() => aggregator.average(), 'LOOM_ERR_INVALID_ARGUMENT').message).toMatch(/no updates/);
    aggregator.dispose();
  });

  it('can be disposed twice and refuses to fold afterwards', () => {
    const aggregator = create(SMALL);
    aggregator.dispose();
    aggregator.dispose();
    const update = [tensor(SMALL[0], [1, 2, 3, 4]), tensor(SMALL[1], [5, 6, 7])];
    loomError(() => aggregator.fold(update, 1), 'LOOM_ERR_INVALID_ARGUMENT');
  });

  describe('rejects a bad update and keeps the sum exactly as it was', () => {
    // Big enough that the typed-array engine folds it in several chunks before the last value.
    const specs = [
      spec('conv/kernel', [3, 3, 8, 16]),
      spec('dense/kernel', [200, 250]),
      spec('dense/bias', [10]),
    ];
    const next = random(42);
    const first = randomUpdate(specs, next);
    const second = randomUpdate(specs, next);

    function withValue(tensorIndex: number, valueIndex: number, value: number): WeightTensor[] {
      const bad = randomUpdate(specs, next);
      const at = valueIndex < 0 ? bad[tensorIndex].data.length + valueIndex : valueIndex;
      bad[tensorIndex].data[at] = value;
      return bad;
    }

    const cases: [string, () => WeightTensor[], number, RejectionReason][] = [
      ['a NaN at the start of the first tensor', () => withValue(0, 0, Number.NaN), 1, 'non-finite'],
      ['a NaN at the end of the last tensor', () => withValue(2, -1, Number.NaN), 1, 'non-finite'],
      ['a NaN in the middle of the largest tensor', () => withValue(1, 33_000, Number.NaN), 1, 'non-finite'],
      ['an Infinity', () => withValue(1, -1, Number.POSITIVE_INFINITY), 1, 'non-finite'],
      ['a -Infinity', () => withValue(0, 5, Number.NEGATIVE_INFINITY), 1, 'non-finite'],
      [
        'a tensor of the wrong shape',
        () => specs.map((s, i) => tensor(i === 1 ? spec(s.name, [250, 200]) : s, new Float32Array(size(s)))),
        1,
        'shape',
      ],
      [
        'a tensor with too few values',
        () => specs.map((s, i) => tensor(s, new Float32Array(i === 2 ? 9 : size(s)))),
        1,
        'shape',
      ],
      [
        'a tensor with the wrong name',
        () =>
          specs.map((s, i) => tensor(i === 2 ? spec('dense/beta', s.shape) : s, new Float32Array(size(s)))),
        1,
        'name',
      ],
      [
        'tensors in the wrong order',
        () => [specs[1], specs[0], specs[2]].map((s) => tensor(s, new Float32Array(size(s)))),
        1,
        'name',
      ],
      ['a missing tensor', () => randomUpdate(specs.slice(0, 2), next), 1, 'shape'],
      ['an extra tensor', () => randomUpdate([...specs, spec('extra', [2])], next), 1, 'shape'],
      [
        'float64 data',
        () =>
          specs.map(
            (s) => ({ ...tensor(s, []), data: new Float64Array(size(s)) }) as unknown as WeightTensor,
          ),
        1,
        'dtype',
      ],
      ['a zero weight', () => randomUpdate(specs, next), 0, 'weight'],
      ['a negative weight', () => randomUpdate(specs, next), -2, 'weight'],
      ['a NaN weight', () => randomUpdate(specs, next), Number.NaN, 'weight'],
      ['an infinite weight', () => randomUpdate(specs, next), Number.POSITIVE_INFINITY, 'weight'],
      ['a weight too small for float32', () => randomUpdate(specs, next), 1e-50, 'weight'],
      ['a weight too large for float32', () => randomUpdate(specs, next), 1e39, 'weight'],
      [
        'finite values near the float32 limit whose weighted sum overflows',
        () => specs.map((s) => tensor(s, new Float32Array(size(s)).fill(3e38))),
        3,
        'overflow',
      ],
      [
        'one value near the float32 limit deep in a multi-chunk tensor',
        () => withValue(1, 40_000, -3.4e38),
        2,
        'overflow',
      ],
    ];

    let expected: WeightTensor[];
    beforeAll(() => {
      expected = aggregate(engine, specs, [
        [first, 2],
        [second, 3],
      ]);
    });

    it.each(cases)('with %s', (_, makeBad, weight, reason) => {
      const aggregator = create(specs);
      try {
        aggregator.fold(first, 2);
        const err = loomError(() => aggregator.fold(makeBad(), weight), 'LOOM_ERR_UPDATE_REJECTED');
        expect(err.details?.reason).toBe(reason);
        expect(aggregator.count).toBe(1);
        expect(aggregator.totalWeight).toBe(2);
        aggregator.fold(second, 3);
        expect(firstDifference(aggregator.average(), expected)).toBeUndefined();
      } finally {
        aggregator.dispose();
      }
    });

    it('names the tensor holding a non-finite value', () => {
      const aggregator = create(specs);
      const err = loomError(
        () => aggregator.fold(withValue(2, -1, Number.NaN), 1),
        'LOOM_ERR_UPDATE_REJECTED',
      );
      expect(err.details).toEqual({ reason: 'non-finite', tensor: 'dense/bias' });
      aggregator.dispose();
    });
  });

  describe('with an L2 norm bound', () => {
    const specs = [spec('w', [1]), spec('b', [1])];
    const update = [tensor(specs[0], [3]), tensor(specs[1], [4])]; // norm 5

    it('rejects an update whose norm exceeds the bound and keeps the sum', () => {
      const aggregator = create(specs, { maxNorm: 4.99 });
      aggregator.fold([tensor(specs[0], [1]), tensor(specs[1], [1])], 1);
      const err = loomError(() => aggregator.fold(update, 1), 'LOOM_ERR_UPDATE_REJECTED');
      expect(err.details?.reason).toBe('norm');
      expect(aggregator.count).toBe(1);
      expect(aggregator.average().map((t) => [...t.data])).toEqual([[1], [1]]);
      aggregator.dispose();
    });

    it('accepts an update within the bound, whatever its weight', () => {
      expect(aggregate(engine, specs, [[update, 1000]], { maxNorm: 5.01 }).map((t) => [...t.data])).toEqual([
        [3],
        [4],
      ]);
    });

    it('still rejects non-finite values as such', () => {
      const aggregator = create(specs, { maxNorm: 10 });
      const bad = [tensor(specs[0], [Number.NaN]), tensor(specs[1], [0])];
      expect(loomError(() => aggregator.fold(bad, 1), 'LOOM_ERR_UPDATE_REJECTED').details?.reason).toBe(
        'non-finite',
      );
      aggregator.dispose();
    });

    it('measures the norm of a multi-chunk update like l2Norm does', () => {
      const big = [spec('a', [300, 300]), spec('b', [40_001])];
      const next = random(11);
      const update = randomUpdate(big, next);
      const norm = l2Norm(update);
      const unbounded = aggregate(engine, big, [[update, 3]]);
      expect(
        firstDifference(aggregate(engine, big, [[update, 3]], { maxNorm: norm * 1.0001 }), unbounded),
      ).toBe(undefined);
      const aggregator = create(big, { maxNorm: norm * 0.9999 });
      expect(loomError(() => aggregator.fold(update, 3), 'LOOM_ERR_UPDATE_REJECTED').details?.reason).toBe(
        'norm',
      );
      update[1].data[40_000] = Number.NaN;
      expect(loomError(() => aggregator.fold(update, 3), 'LOOM_ERR_UPDATE_REJECTED').details?.reason).toBe(
        'non-finite',
      );
      expect(aggregator.count).toBe(0);
      aggregator.dispose();
    });

    it('refuses a bound that is not a positive number', () => {
      loomError(() => create(specs, { maxNorm: 0 }), 'LOOM_ERR_INVALID_ARGUMENT');
      loomError(() => create(specs, { maxNorm: Number.NaN }), 'LOOM_ERR_INVALID_ARGUMENT');
    });
  });

  describe('with clipping', () => {
    // Several staging chunks, so the second (scaled) pass of the typed-array engine is exercised.
    const specs = [spec('dense/kernel', [300, 400]), spec('dense/bias', [7])];
    const next = random(7);
    const small = randomUpdate(specs, next);
    const big = randomUpdate(specs, next).map((t) => ({ ...t, data: t.data.map((v) => v * 1000) }));

    it('scales an update larger than clipNorm down to it and reports its norm and scale', () => {
      const clipNorm = l2Norm(small);
      const aggregator = create(specs);
      try {
        const kept = aggregator.fold(small, 2, { clipNorm: clipNorm * 1.01 });
        expect(kept.scale).toBe(1);
        expect(kept.norm).toBeCloseTo(l2Norm(small), 2);
        const clipped = aggregator.fold(big, 3, { clipNorm });
        expect(clipped.norm).toBeCloseTo(l2Norm(big), -1);
        // The tfjs engine sums squares in float32: agreement to a relative 1e-4.
        expect(Math.abs(clipped.scale / (clipNorm / l2Norm(big)) - 1)).toBeLessThan(1e-4);
        expect(aggregator.totalWeight).toBe(5);
        const scaledBig = big.map((t) => ({ ...t, data: t.data.map((v) => v * clipped.scale) }));
        const reference = referenceAverage([small, scaledBig], [2, 3]);
        expect(maxAbsDiff(aggregator.average(), reference)).toBeLessThan(1e-5);
      } finally {
        aggregator.dispose();
      }
    });

    it('turns values near the float32 limit into a bounded contribution instead of an overflow', () => {
      const huge = specs.map((s) => tensor(s, new Float32Array(size(s)).fill(3e38)));
      const aggregator = create(specs);
      try {
        aggregator.fold(small, 1);
        // Weight 100: unclipped, the first value alone would overflow the float32 sum.
        const report = aggregator.fold(huge, 100, { clipNorm: 1 });
        expect(report.scale).toBeLessThan(1e-40);
        const mean = aggregator.average();
        expect(l2Norm(mean)).toBeLessThan(l2Norm(small));
        expect(mean.every((t) => t.data.every(Number.isFinite))).toBe(true);
      } finally {
        aggregator.dispose();
      }
    });

    it('measures an update without changing the sum, and rejects what fold would reject', () => {
      const aggregator = create(specs, { maxNorm: l2Norm(big) * 0.5 });
      try {
        aggregator.fold(small, 1);
        expect(aggregator.measure(small)).toBeCloseTo(l2Norm(small), 3);
        const bad = randomUpdate(specs, next);
        bad[0].data[123] = Number.NaN;
        expect(loomError(() => aggregator.measure(bad), 'LOOM_ERR_UPDATE_REJECTED').details?.reason).toBe(
          'non-finite',
        );
        expect(loomError(() => aggregator.measure(big), 'LOOM_ERR_UPDATE_REJECTED').details?.reason).toBe(
          'norm',
        );
        expect(aggregator.count).toBe(1);
        expect(maxAbsDiff(aggregator.average(), referenceAverage([small], [1]))).toBe(0);
      } finally {
        aggregator.dispose();
      }
    });

    it('refuses a clip norm that is not a positive number as a programming error', () => {
      const aggregator = create(specs);
      expect(() => aggregator.fold(small, 1, { clipNorm: 0 })).toThrow(TypeError);
      expect(aggregator.count).toBe(0);
      aggregator.dispose();
    });
  });
});

describe('the two engines', () => {
  it('agree on random updates within 1e-5', () => {
    const specs = [
      spec('conv/kernel', [3, 3, 4, 8]),
      spec('conv/bias', [8]),
      spec('dense/kernel', [96, 100]),
    ];
    const next = random(1);
    const updates = Array.from({ length: 5 }, () => randomUpdate(specs, next));
    const weights = [12, 40, 7, 3, 25];
    const folds = updates.map((u, c) => [u, weights[c]] as const);
    const typed = aggregate('typed-array', specs, folds);
    const tensors = aggregate('tfjs', specs, folds);
    expect(
      maxAbsDiff(
        typed,
        tensors.map((t) => t.data),
      ),
    ).toBeLessThan(1e-5);
    expect(maxAbsDiff(typed, referenceAverage(updates, weights))).toBeLessThan(1e-6);
  });

  it('are chosen by name, and an unknown name is refused', () => {
    expect(ENGINE_NAMES).toEqual(['typed-array', 'tfjs']);
    loomError(() => createAggregationEngine('gpu' as EngineName), 'LOOM_ERR_INVALID_ARGUMENT');
  });
});

describe('the tfjs engine', () => {
  it('leaks no tensors over create, fold, reject, average and dispose', () => {
    const specs = [spec('a', [4, 5]), spec('b', [5])];
    const next = random(3);
    const before = tf.memory().numTensors;
    const aggregator = createAggregationEngine('tfjs').createAggregator(specs, { maxNorm: 100 });
    aggregator.fold(randomUpdate(specs, next), 2);
    const bad = randomUpdate(specs, next);
    bad[1].data[4] = Number.NaN;
    loomError(() => aggregator.fold(bad, 1), 'LOOM_ERR_UPDATE_REJECTED');
    const tooLong = [tensor(specs[0], new Float32Array(20).fill(50)), tensor(specs[1], new Float32Array(5))];
    expect(loomError(() => aggregator.fold(tooLong, 1), 'LOOM_ERR_UPDATE_REJECTED').details?.reason).toBe(
      'norm',
    );
    aggregator.fold(randomUpdate(specs, next), 3);
    aggregator.average();
    aggregator.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('applyAverageDelta', () => {
  const global = [tensor(SMALL[0], [1, 2, 3, 4]), tensor(SMALL[1], [0.5, 0, -1])];
  const delta = [tensor(SMALL[0], [0.5, -1, 0, 2]), tensor(SMALL[1], [1, 1, 1])];

  it('adds the average delta to the global weights as new tensors', () => {
    const next = applyAverageDelta(global, delta);
    expect(next.map((t) => [...t.data])).toEqual([
      [1.5, 1, 3, 6],
      [1.5, 1, 0],
    ]);
    expect(next[0].data).not.toBe(global[0].data);
    expect(next[0]).toMatchObject({ name: 'dense/kernel', shape: [2, 2], dtype: 'float32' });
    expect([...global[0].data]).toEqual([1, 2, 3, 4]);
  });

  it('scales the delta by the server learning rate', () => {
    expect(applyAverageDelta(global, delta, 0.5).map((t) => [...t.data])).toEqual([
      [1.25, 1.5, 3, 5],
      [1, 0.5, -0.5],
    ]);
  });

  it('refuses a delta that does not match the global weights', () => {
    loomError(() => applyAverageDelta(global, [delta[0]]), 'LOOM_ERR_TENSOR');
    loomError(() => applyAverageDelta(global, delta, Number.NaN), 'LOOM_ERR_INVALID_ARGUMENT');
  });
});

describe('l2Norm', () => {
  it('is the Euclidean norm over all tensors', () => {
    expect(l2Norm([tensor(spec('a', [1]), [3]), tensor(spec('b', [2]), [0, 4])])).toBe(5);
    expect(l2Norm([])).toBe(0);
  });
});

describe.each(ENGINE_NAMES)('huge finite values in the %s engine', (engine) => {
  it('folds an update whose values are finite even when their sum would overflow float32', () => {
    const s = [spec('w', [64])];
    const huge = tensor(s[0], new Array(64).fill(3e38));
    const average = aggregate(engine, s, [[[huge], 1e-30]]);
    expect(average[0].data.every((v) => Math.abs(v - Math.fround(3e38)) <= Math.fround(3e38) * 1e-6)).toBe(
      true,
    );
  });
});

describe.each(ENGINE_NAMES)('closing the %s aggregate', (engine) => {
  it('refuses folds after average() and recomputes the same average when asked again', () => {
    const aggregator = createAggregationEngine(engine).createAggregator(SMALL);
    try {
      aggregator.fold([tensor(SMALL[0], [1, 2, 3, 4]), tensor(SMALL[1], [5, 6, 7])], 2);
      const first = aggregator.average().map((t) => [...t.data]);
      expect(
        loomError(
          () => aggregator.fold([tensor(SMALL[0], [0, 0, 0, 0]), tensor(SMALL[1], [0, 0, 0])], 1),
          'LOOM_ERR_INVALID_ARGUMENT',
        ).message,
      ).toMatch(/closed/);
      expect(aggregator.average().map((t) => [...t.data])).toEqual(first);
      expect(aggregator.count).toBe(1);
    } finally {
      aggregator.dispose();
    }
  });
});

import { describe, expect, it } from 'vitest';
import {
  GEMM_COLS,
  GEMM_ROWS,
  GEMM_UNROLL,
  type GemmShape,
  instantiateGemms,
  kernelMemory,
} from '../../edge-agent/training/fast/gemm-kernel.ts';

/** A seeded generator, so a failure reproduces. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function check(
  m: number,
  n: number,
  k: number,
  transA: boolean,
  relu: boolean,
  initRows: boolean,
  shared: boolean,
  columnsOuter = false,
) {
  const memory = kernelMemory(1 << 20, shared);
  const a = 0;
  const b = a + m * k * 4;
  const c = b + k * n * 4;
  const init = c + m * n * 4;
  const shape: GemmShape = {
    saRow: transA ? 4 : k * 4,
    saCol: transA ? m * 4 : 4,
    ldb: n * 4,
    ldc: n * 4,
    ldi: initRows ? n * 4 : 0,
    relu,
    columnsOuter,
  };
  const { gemm } = instantiateGemms({ gemm: shape }, memory);
  const f = new Float32Array(memory.buffer);
  const next = random(m * 7 + n * 13 + k);
  for (let i = 0; i < (init + m * n * 4) / 4; i++) f[i] = next();
  const alpha = -0.3;
  const want = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += f[(a + i * shape.saRow + q * shape.saCol) / 4] * f[b / 4 + q * n + j];
      const v = f[init / 4 + (initRows ? i * n : 0) + j] + alpha * s;
      want[i * n + j] = relu ? Math.max(v, 0) : v;
    }
  }
  gemm(a, b, c, init, m, n * 4, k, alpha);
  const got = f.subarray(c / 4, c / 4 + m * n);
  for (let i = 0; i < m * n; i++) expect(got[i]).toBeCloseTo(want[i], 4);
}

describe('fast-path matrix product', () => {
  it('multiplies A·B plus a broadcast bias, with and without ReLU', () => {
    check(GEMM_ROWS * 3, GEMM_COLS * 5, GEMM_UNROLL * 7, false, false, false, false);
    check(GEMM_ROWS * 2, GEMM_COLS * 3, GEMM_UNROLL * 5, false, true, false, false);
  });

  it('multiplies a transposed A and accumulates into C (the SGD step on a kernel)', () => {
    check(GEMM_ROWS * 5, GEMM_COLS * 2, GEMM_UNROLL * 3, true, false, true, false);
  });

  it('computes the rows past the last whole block of GEMM_ROWS one by one', () => {
    for (const m of [1, 3, GEMM_ROWS + 1, GEMM_ROWS * 2 + 3]) {
      check(m, GEMM_COLS * 5, 7, false, false, false, false);
      check(m, GEMM_COLS, 5, true, true, true, false);
    }
  });

  it('gives the same product with the column blocks in the outer loop', () => {
    for (const m of [2, GEMM_ROWS * 3 + 1]) check(m, GEMM_COLS * 3, 6, true, false, true, false, true);
  });

  it('runs on a memory shared between threads', () => {
    check(GEMM_ROWS, GEMM_COLS, GEMM_UNROLL, false, false, true, true);
  });

  it('refuses a stride that is not a whole number of floats', () => {
    const memory = kernelMemory(1024);
    const shape = { saRow: 6, saCol: 4, ldb: 32, ldc: 32, ldi: 0, relu: false };
    expect(() => instantiateGemms({ gemm: shape }, memory)).toThrow(TypeError);
  });
});

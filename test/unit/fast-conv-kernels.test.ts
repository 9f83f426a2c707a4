import { describe, expect, it } from 'vitest';
import { instantiateGemms, kernelMemory } from '../../edge-agent/training/fast/gemm-kernel.ts';

/** A seeded generator, so a failure reproduces. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** The helpers of a kernel module (any GEMM shape will do) and views of its memory. */
function helpers() {
  const memory = kernelMemory(1 << 22);
  const kernels = instantiateGemms(
    { g: { saRow: 16, saCol: 4, ldb: 32, ldc: 32, ldi: 0, relu: false } },
    memory,
  );
  return { kernels, f: new Float32Array(memory.buffer), i32: new Int32Array(memory.buffer) };
}

describe('fast-path convolution helpers', () => {
  it('im2col gives the rows of a same-padded convolution, with and without padded channels', () => {
    for (const [height, width, channels, inC, size] of [
      [5, 4, 1, 1, 5],
      [7, 7, 3, 8, 5],
      [6, 5, 8, 8, 3],
      [4, 6, 2, 4, 1],
    ]) {
      const { kernels, f } = helpers();
      const samples = 3;
      const pad = Math.floor((size - 1) / 2);
      const inStride = height * width * inC + 5;
      const kP = Math.ceil((size * size * channels) / 8) * 8;
      const src = 16;
      const cols = src + samples * inStride + 3;
      const next = random(height * 31 + channels);
      for (let i = 0; i < samples * inStride; i++) f[src + i] = next();
      // Rows start filled with garbage except the padding columns, which the caller keeps zero.
      for (let r = 0; r < samples * height * width; r++)
        for (let c = 0; c < kP; c++) f[cols + r * kP + c] = c < size * size * channels ? 99 : 0;
      kernels.im2col(
        4 * src,
        4 * cols,
        samples,
        height,
        width,
        channels,
        inC,
        size,
        pad,
        4 * kP,
        4 * inStride,
      );
      for (let s = 0; s < samples; s++)
        for (let oy = 0; oy < height; oy++)
          for (let ox = 0; ox < width; ox++) {
            const row = cols + ((s * height + oy) * width + ox) * kP;
            for (let ky = 0; ky < size; ky++)
              for (let kx = 0; kx < size; kx++)
                for (let c = 0; c < channels; c++) {
                  const iy = oy + ky - pad;
                  const ix = ox + kx - pad;
                  const inside = iy >= 0 && iy < height && ix >= 0 && ix < width;
                  const want = inside ? f[src + s * inStride + (iy * width + ix) * inC + c] : 0;
                  expect(f[row + (ky * size + kx) * channels + c]).toBe(want);
                }
            for (let c = size * size * channels; c < kP; c++) expect(f[row + c]).toBe(0);
          }
    }
  });

  it('col2im adds each row of cols back into the image gradient, in row order, dropping outside taps', () => {
    for (const [height, width, channels, inC, size] of [
      [5, 4, 1, 1, 5],
      [7, 7, 3, 8, 5],
      [6, 5, 8, 8, 3],
    ]) {
      const { kernels, f } = helpers();
      const samples = 2;
      const pad = Math.floor((size - 1) / 2);
      const inStride = height * width * inC + 5;
      const kP = Math.ceil((size * size * channels) / 8) * 8;
      const img = 16;
      const cols = img + samples * inStride + 3;
      const next = random(height * 17 + channels);
      for (let i = 0; i < samples * height * width * kP; i++) f[cols + i] = next();
      f.fill(0, img, img + samples * inStride);
      kernels.col2im(
        4 * img,
        4 * cols,
        samples,
        height,
        width,
        channels,
        inC,
        size,
        pad,
        4 * kP,
        4 * inStride,
      );
      const want = new Float32Array(samples * inStride);
      for (let s = 0; s < samples; s++)
        for (let oy = 0; oy < height; oy++)
          for (let ox = 0; ox < width; ox++) {
            const row = cols + ((s * height + oy) * width + ox) * kP;
            for (let ky = 0; ky < size; ky++)
              for (let kx = 0; kx < size; kx++) {
                const iy = oy + ky - pad;
                const ix = ox + kx - pad;
                if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;
                for (let c = 0; c < channels; c++)
                  want[s * inStride + (iy * width + ix) * inC + c] +=
                    f[row + (ky * size + kx) * channels + c];
              }
          }
      expect(Array.from(f.subarray(img, img + samples * inStride))).toEqual(Array.from(want));
    }
  });

  it('max-pools 2×2 windows, the first maximum winning ties and a NaN never replacing a value', () => {
    const { kernels, f, i32 } = helpers();
    const [samples, height, width, c] = [2, 5, 6, 8];
    const y = 64;
    const out = y + samples * height * width * c;
    const argmax = out + 4096;
    const next = random(5);
    for (let i = 0; i < samples * height * width * c; i++) f[y + i] = Math.round(next() * 4) / 2;
    f[y + 3] = Number.NaN; // pixel (0, 0), channel 3: the window's first value
    f[y + c + 4] = Number.NaN; // pixel (0, 1), channel 4
    const ph = Math.floor(height / 2);
    const pw = Math.floor(width / 2);
    kernels.maxPool(
      4 * y,
      4 * out,
      4 * argmax,
      samples,
      ph,
      pw,
      4 * width * c,
      4 * c,
      4 * height * width * c,
    );
    for (let s = 0; s < samples; s++)
      for (let py = 0; py < ph; py++)
        for (let px = 0; px < pw; px++)
          for (let ch = 0; ch < c; ch++) {
            const at = ((s * ph + py) * pw + px) * c + ch;
            const p = y + ((s * height + 2 * py) * width + 2 * px) * c + ch;
            let best = p;
            for (const q of [p + c, p + width * c, p + width * c + c]) if (f[q] > f[best]) best = q;
            expect(Object.is(f[out + at], f[best])).toBe(true);
            expect(i32[argmax + at]).toBe(4 * best);
          }
  });

  it('scatters the pooling gradient to the argmax, zero where the ReLU was off', () => {
    const { kernels, f, i32 } = helpers();
    const y = 0;
    const dz = 256;
    const argmax = 512;
    const grad = 768;
    const perSample = 3;
    const gradStride = 5;
    f.fill(0, dz, dz + 256);
    // Sample 0 points at y[2] (positive), y[7] (zero), y[9] (negative); sample 1 at y[20..22].
    f.set([1, 1, 0.5, 1, 1, 1, 1, 0, 1, -2], y);
    f.set([3, 0, 4], y + 20);
    i32.set(
      [2, 7, 9, 20, 21, 22].map((i) => 4 * i),
      argmax,
    );
    f.set([10, 11, 12, -1, -1, 20, 21, 22], grad);
    kernels.poolScatter(4 * argmax, 4 * grad, 2, perSample, 4 * gradStride, 4 * (dz - y), 1);
    expect([2, 7, 9, 20, 21, 22].map((i) => f[dz + i])).toEqual([10, 0, 0, 20, 0, 22]);
    kernels.poolScatter(4 * argmax, 4 * grad, 2, perSample, 4 * gradStride, 4 * (dz - y), 0);
    expect([2, 7, 9, 20, 21, 22].map((i) => f[dz + i])).toEqual([10, 11, 12, 20, 21, 22]);
  });

  it('adds alpha times the column sums of a matrix to a row', () => {
    const { kernels, f } = helpers();
    const [rows, ld, n] = [37, 20, 12];
    const next = random(9);
    for (let i = 0; i < rows * ld; i++) f[i] = next();
    const dst = rows * ld + 4;
    for (let j = 0; j < ld; j++) f[dst + j] = j;
    kernels.sumRows(0, rows, 4 * ld, 4 * n, 4 * dst, -0.25);
    for (let j = 0; j < ld; j++) {
      let sum = 0;
      for (let r = 0; r < rows; r++) sum += f[r * ld + j];
      expect(f[dst + j]).toBeCloseTo(j < n ? j - 0.25 * sum : j, 5);
    }
  });
});

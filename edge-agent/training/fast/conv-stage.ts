// One convolution of the fused training loop, with the 2×2 max pooling that may follow it: im2col
// and the GEMM kernel forward (bias and ReLU fused), pooling with its argmax kept, and backward the
// pooling scatter, the ReLU mask, the input gradient (GEMM then col2im) and the weight gradient
// (transposed-A GEMM) folded into the SGD step.
import type { ConvKernels, Im2colFn } from './conv-kernels.ts';
import { GEMM_COLS, type GemmFn, type GemmShape } from './gemm-kernel.ts';
import type { ConvLayerPlan } from './plan.ts';

const padCols = (n: number): number => Math.ceil(n / GEMM_COLS) * GEMM_COLS;

/**
 * Buffers (float offsets into the shared memory) of one convolution over a batch of `batchSize`
 * samples. Rows of `cols`, `y` and `dz` are output pixels, sample after sample (`hw` per sample),
 * so a part of the batch's samples is a contiguous block of rows.
 */
export class ConvStage {
  /** Output pixels per sample, im2col columns (padded), filters (padded). */
  readonly hw: number;
  readonly kP: number;
  readonly outP: number;
  readonly cols: number;
  readonly w: number;
  readonly b: number;
  /** The kernel transposed, [outP, kP], when the input gradient is needed. */
  readonly wt: number;
  readonly y: number;
  readonly dz: number;
  /** dLoss/dcols, [batchSize·hw, kP], when the input gradient is needed. */
  readonly dcols: number;
  /** The pooled output, [batchSize, pooledHw·outP], or -1 without pooling. */
  readonly pooled: number;
  readonly pooledH: number;
  readonly pooledW: number;
  /** Per pooled value (int32, same layout as `pooled`), the byte address in `y` of the maximum. */
  readonly argmax: number;
  private forwardGemm!: GemmFn;
  private updateGemm!: GemmFn;
  private inputGemm?: GemmFn;
  private helpers!: ConvKernels;
  private f32: Float32Array = new Float32Array(0);

  /**
   * `input` is this stage's input buffer, `inputStride` floats per sample with pixels `inC`
   * floats apart (the previous stage's padded channels).
   */
  constructor(
    readonly plan: ConvLayerPlan,
    readonly pool: boolean,
    readonly input: number,
    readonly inputStride: number,
    readonly inC: number,
    readonly inputGrad: boolean,
    readonly batchSize: number,
    alloc: (floats: number) => number,
  ) {
    const { height, width, channels, size, filters } = plan;
    this.hw = height * width;
    this.kP = padCols(size * size * channels);
    this.outP = padCols(filters);
    const rows = batchSize * this.hw;
    this.cols = alloc(rows * this.kP);
    this.w = alloc(this.kP * this.outP);
    this.b = alloc(this.outP);
    this.wt = inputGrad ? alloc(this.outP * this.kP) : -1;
    this.y = alloc(rows * this.outP);
    this.dz = alloc(rows * this.outP);
    this.dcols = inputGrad ? alloc(rows * this.kP) : -1;
    this.pooledH = pool ? Math.floor(height / 2) : height;
    this.pooledW = pool ? Math.floor(width / 2) : width;
    this.pooled = pool ? alloc(batchSize * this.pooledH * this.pooledW * this.outP) : -1;
    this.argmax = pool ? alloc(batchSize * this.pooledH * this.pooledW * this.outP) : -1;
  }

  /** The output buffer and its floats per sample (pixels `outP` apart). */
  get output(): number {
    return this.pool ? this.pooled : this.y;
  }
  get outputStride(): number {
    return this.pooledH * this.pooledW * this.outP;
  }

  /** The GEMM shapes this stage needs, by name. */
  shapes(name: string): Record<string, GemmShape> {
    const shapes: Record<string, GemmShape> = {
      [`${name}f`]: {
        saRow: this.kP * 4,
        saCol: 4,
        ldb: this.outP * 4,
        ldc: this.outP * 4,
        ldi: 0,
        relu: this.plan.activation === 'relu',
      },
      [`${name}u`]: {
        saRow: 4,
        saCol: this.kP * 4,
        ldb: this.outP * 4,
        ldc: this.outP * 4,
        ldi: this.outP * 4,
        relu: false,
      },
    };
    if (this.inputGrad)
      shapes[`${name}d`] = {
        saRow: this.outP * 4,
        saCol: 4,
        ldb: this.kP * 4,
        ldc: this.kP * 4,
        ldi: 0,
        relu: false,
      };
    return shapes;
  }

  attach(name: string, kernels: Record<string, GemmFn> & ConvKernels, f32: Float32Array): void {
    this.helpers = kernels;
    this.forwardGemm = kernels[`${name}f`];
    this.updateGemm = kernels[`${name}u`];
    this.inputGemm = kernels[`${name}d`];
    this.f32 = f32;
  }

  /** Kernel `[size, size, channels, filters]` and bias in; padding stays zero. */
  setWeights(kernel: Float32Array, bias: Float32Array): void {
    const f = this.f32;
    const { filters } = this.plan;
    const k = kernel.length / filters;
    f.fill(0, this.w, this.w + this.kP * this.outP);
    f.fill(0, this.b, this.b + this.outP);
    for (let r = 0; r < k; r++)
      f.set(kernel.subarray(r * filters, (r + 1) * filters), this.w + r * this.outP);
    f.set(bias, this.b);
  }

  getWeights(): [Float32Array, Float32Array] {
    const f = this.f32;
    const { filters, size, channels } = this.plan;
    const k = size * size * channels;
    const kernel = new Float32Array(k * filters);
    for (let r = 0; r < k; r++)
      kernel.set(f.subarray(this.w + r * this.outP, this.w + r * this.outP + filters), r * filters);
    return [kernel, f.slice(this.b, this.b + filters)];
  }

  /** Rows [i0, i1) of the kernel copied transposed into `wt` (before the update changes it). */
  transpose(i0: number, i1: number): void {
    if (!this.inputGrad) return;
    const f = this.f32;
    const { outP, kP } = this;
    for (let i = i0; i < i1; i++) {
      const row = this.w + i * outP;
      for (let j = 0; j < outP; j++) f[this.wt + j * kP + i] = f[row + j];
    }
  }

  /** Forward for samples [s0, s1): im2col, GEMM (+bias, activation), pooling. */
  forward(s0: number, s1: number): void {
    const { hw, kP } = this;
    this.patches(this.helpers.im2col, this.input, this.cols, s0, s1);
    const m = (s1 - s0) * hw;
    this.forwardGemm(
      4 * (this.cols + s0 * hw * kP),
      4 * this.w,
      4 * (this.y + s0 * hw * this.outP),
      4 * this.b,
      m,
      4 * this.outP,
      kP,
      1,
    );
    if (this.pool) this.poolForward(s0, s1);
  }

  private poolForward(s0: number, s1: number): void {
    const { width } = this.plan;
    const { outP, pooledH, pooledW, hw } = this;
    const first = s0 * this.outputStride;
    this.helpers.maxPool(
      4 * (this.y + s0 * hw * outP),
      4 * (this.pooled + first),
      4 * (this.argmax + first),
      s1 - s0,
      pooledH,
      pooledW,
      4 * width * outP,
      4 * outP,
      4 * hw * outP,
    );
  }

  /**
   * Backward for samples [s0, s1) from the gradient of this stage's output (`grad`, `gradStride`
   * floats per sample, pixels `outP` apart): dz, then (when asked) the input gradient into
   * `inGrad` (the previous stage's output layout, `inputStride` per sample). `zeros` is a row of
   * at least `kP` zeros.
   */
  backward(s0: number, s1: number, grad: number, gradStride: number, inGrad: number, zeros: number): void {
    const f = this.f32;
    const { hw, outP, kP } = this;
    const relu = this.plan.activation === 'relu';
    const dz0 = this.dz + s0 * hw * outP;
    const dz1 = this.dz + s1 * hw * outP;
    if (this.pool) {
      f.fill(0, dz0, dz1);
      const stride = this.outputStride;
      this.helpers.poolScatter(
        4 * (this.argmax + s0 * stride),
        4 * (grad + s0 * gradStride),
        s1 - s0,
        stride,
        4 * gradStride,
        4 * (this.dz - this.y),
        relu ? 1 : 0,
      );
    } else {
      for (let s = s0; s < s1; s++) {
        for (let i = 0; i < hw * outP; i++) {
          const at = s * hw * outP + i;
          const g = f[grad + s * gradStride + i];
          f[this.dz + at] = relu && f[this.y + at] <= 0 ? 0 : g;
        }
      }
    }
    if (!this.inputGemm) return;
    const m = (s1 - s0) * hw;
    this.inputGemm(4 * dz0, 4 * this.wt, 4 * (this.dcols + s0 * hw * kP), 4 * zeros, m, 4 * kP, outP, 1);
    this.col2im(s0, s1, inGrad);
  }

  private col2im(s0: number, s1: number, inGrad: number): void {
    const inStride = this.inputStride;
    this.f32.fill(0, inGrad + s0 * inStride, inGrad + s1 * inStride);
    this.patches(this.helpers.col2im, inGrad, this.dcols, s0, s1);
  }

  /** im2col or col2im between samples [s0, s1) of `image` (this stage's input layout) and `cols`. */
  private patches(kernel: Im2colFn, image: number, cols: number, s0: number, s1: number): void {
    const { height, width, channels, size } = this.plan;
    kernel(
      4 * (image + s0 * this.inputStride),
      4 * (cols + s0 * this.hw * this.kP),
      s1 - s0,
      height,
      width,
      channels,
      this.inC,
      size,
      Math.floor((size - 1) / 2),
      4 * this.kP,
      4 * this.inputStride,
    );
  }

  /** The SGD step on filter blocks [c0, c1) (of GEMM_COLS) from the dz of the batch's `samples`. */
  update(c0: number, c1: number, samples: number, learningRate: number): void {
    if (c0 === c1) return;
    const f = this.f32;
    const { hw, outP, kP } = this;
    const j0 = c0 * GEMM_COLS;
    const j1 = c1 * GEMM_COLS;
    const w = 4 * (this.w + j0);
    const rows = samples * hw;
    this.updateGemm(4 * this.cols, 4 * (this.dz + j0), w, w, kP, 4 * (j1 - j0), rows, -learningRate);
    // The bias gradient, column sums of dz, on the filters of these blocks (padding stays zero).
    const end = Math.min(j1, this.plan.filters);
    const vectors = Math.max(0, (end - j0) & ~3);
    this.helpers.sumRows(4 * (this.dz + j0), rows, 4 * outP, 4 * vectors, 4 * (this.b + j0), -learningRate);
    for (let j = j0 + vectors; j < end; j++) {
      let sum = 0;
      for (let r = 0; r < rows; r++) sum += f[this.dz + r * outP + j];
      f[this.b + j] -= learningRate * sum;
    }
  }
}

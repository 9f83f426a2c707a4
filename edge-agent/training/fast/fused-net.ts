// One model's training state in WebAssembly memory: weights, activations and gradients laid out
// once, padded to the kernel's blocks, and a step that runs forward, softmax cross-entropy,
// backward and the SGD update over them without leaving that memory.
import type { WasmMemory } from '../../../shared/wasm/index.ts';
import { ConvStage } from './conv-stage.ts';
import { GEMM_COLS, type GemmFn, type GemmShape, instantiateGemms, kernelMemory } from './gemm-kernel.ts';
import { type BatchLoss, softmaxCrossEntropy } from './loss.ts';
import type { DenseLayerPlan, TrainingPlan } from './plan.ts';

const padCols = (n: number): number => Math.ceil(n / GEMM_COLS) * GEMM_COLS;

/**
 * Float offset of `[i, j]` in a packed matrix of `rows` rows: blocks of GEMM_COLS columns one
 * after the other, each block's rows contiguous. The dense kernels are kept so: a product with a
 * batch's few rows then streams them instead of striding through them (about 4× the GFLOP/s for
 * the CNN's 3136 × 512 kernel, `npm run bench -- gemm`).
 */
const packed = (rows: number, i: number, j: number): number =>
  (j - (j % GEMM_COLS)) * rows + i * GEMM_COLS + (j % GEMM_COLS);

/** Where one dense layer's buffers live (float offsets) and the kernels that work on them. */
interface DenseSlot {
  plan: DenseLayerPlan;
  inP: number;
  outP: number;
  /**
   * kernel [inP, outP] and the kernel transposed [outP, inP] (for the input gradient; -1
   * without), both packed, and the bias [outP]. The SGD step updates both copies with the same
   * products summed in the same order, so they stay exact transposes of each other without a
   * transpose per step.
   */
  w: number;
  b: number;
  wt: number;
  /** This layer's input (the previous output) and output, [rows, inP] and [rows, outP]. */
  x: number;
  y: number;
  /** dLoss/d(pre-activation output), [rows, outP]. */
  dz: number;
  forward: GemmFn;
  update: GemmFn;
  inputGrad?: GemmFn;
  updateTransposed?: GemmFn;
}

/**
 * The training state of one model for batches of up to `batchSize` examples. Weights enter
 * and leave in TensorFlow.js's layout (`kernel [inputs, units]`, `bias [units]`, layer by layer).
 */
export class FusedNet {
  readonly memory: WasmMemory;
  private readonly slots: DenseSlot[] = [];
  /** The convolutions (each with its pooling, if any) before the dense layers. */
  private readonly stages: ConvStage[] = [];
  /** For each stage but the first, the gradient of its input (the previous stage's output). */
  private readonly stageGrads: number[] = [];
  /** Where the examples are copied in: the first stage's input, or the first dense layer's. */
  private input = 0;
  private inputStride = 0;
  /**
   * The input gradient of a layer, [rows, dxStride], before the previous layer's activation
   * mask. One row stride for every layer, so threads on different layers never overlap.
   */
  private readonly dx: number;
  private readonly dxStride: number;
  private readonly zeros: number;
  private f32: Float32Array;

  /** Bytes of WebAssembly memory the layout of `plan` at `batchSize` takes. */
  static bytesFor(plan: TrainingPlan, batchSize: number): number {
    return new FusedNet(plan, batchSize, 'measure').bytes;
  }

  /** Bytes of the layout (the memory may be larger). */
  readonly bytes: number;

  /**
   * Lays the model out in `memory` (a fresh one when not given; threads that train together
   * pass the same shared memory, and each gets the same layout).
   */
  constructor(
    readonly plan: TrainingPlan,
    readonly batchSize: number,
    memory?: WasmMemory | 'measure',
  ) {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1)
      throw new TypeError('batchSize must be a positive integer');
    let next = 0;
    const alloc = (floats: number): number => {
      const at = next;
      next += Math.ceil(floats / 4) * 4;
      return at;
    };
    const dense = plan.layers.filter((l): l is DenseLayerPlan => l.kind === 'dense');
    let widest = 0;
    let x = -1;
    let stride = padCols(plan.inputs);
    plan.layers.forEach((layer, i) => {
      if (layer.kind !== 'conv2d') return;
      const pool = plan.layers[i + 1]?.kind === 'maxpool2d';
      const prev = this.stages[this.stages.length - 1];
      const input = prev ? prev.output : alloc(batchSize * plan.inputs);
      const inStride = prev ? prev.outputStride : plan.inputs;
      if (!prev) {
        this.input = input;
        this.inputStride = plan.inputs;
      } else this.stageGrads.push(alloc(batchSize * inStride));
      const stage = new ConvStage(
        layer,
        pool,
        input,
        inStride,
        prev ? prev.outP : layer.channels,
        !!prev,
        batchSize,
        alloc,
      );
      this.stages.push(stage);
      widest = Math.max(widest, stage.kP);
      x = stage.output;
      stride = stage.outputStride;
    });
    const layout = dense.map((layer, i) => ({
      layer,
      inP: i === 0 ? stride : padCols(layer.inputs),
      outP: padCols(layer.units),
    }));
    const front = this.stages.length > 0;
    if (!front) {
      x = alloc(batchSize * layout[0].inP);
      this.input = x;
      this.inputStride = layout[0].inP;
    }
    const pending: Omit<DenseSlot, 'forward' | 'update' | 'inputGrad'>[] = [];
    for (const { layer, inP, outP } of layout) {
      const w = alloc(inP * outP);
      const b = alloc(outP);
      const wt = pending.length > 0 || front ? alloc(outP * inP) : -1;
      const y = alloc(batchSize * outP);
      const dz = alloc(batchSize * outP);
      pending.push({ plan: layer, inP, outP, w, b, wt, x, y, dz });
      widest = Math.max(widest, inP, outP);
      x = y;
    }
    this.dxStride = widest;
    this.dx = alloc(batchSize * widest);
    this.zeros = alloc(widest);
    this.bytes = next * 4;
    if (memory === 'measure') {
      this.memory = undefined as unknown as WasmMemory;
      this.f32 = new Float32Array(0);
      return;
    }
    this.memory = memory ?? kernelMemory(this.bytes);
    if (this.memory.buffer.byteLength < this.bytes)
      throw new TypeError('the memory is smaller than the layout');
    const shapes: Record<string, GemmShape> = {};
    for (const [i, stage] of this.stages.entries()) Object.assign(shapes, stage.shapes(`c${i}`));
    pending.forEach((s, l) => {
      const block = 4 * GEMM_COLS;
      shapes[`f${l}`] = {
        saRow: s.inP * 4,
        saCol: 4,
        ldb: block,
        sbBlock: block * s.inP,
        ldc: s.outP * 4,
        ldi: 0,
        relu: s.plan.activation === 'relu',
      };
      shapes[`u${l}`] = {
        saRow: 4,
        saCol: s.inP * 4,
        ldb: s.outP * 4,
        ldc: block,
        scBlock: block * s.inP,
        ldi: block,
        siBlock: block * s.inP,
        relu: false,
        columnsOuter: true,
      };
      if (l > 0 || front) {
        shapes[`d${l}`] = {
          saRow: s.outP * 4,
          saCol: 4,
          ldb: block,
          sbBlock: block * s.outP,
          ldc: widest * 4,
          ldi: 0,
          relu: false,
        };
        // wt[k, i] -= rate · Σr dz[r, k] · x[r, i]: A is dz transposed, B the layer's input.
        shapes[`t${l}`] = {
          saRow: 4,
          saCol: s.outP * 4,
          ldb: s.inP * 4,
          ldc: block,
          scBlock: block * s.outP,
          ldi: block,
          siBlock: block * s.outP,
          relu: false,
          columnsOuter: true,
        };
      }
    });
    const kernels = instantiateGemms(shapes, this.memory);
    pending.forEach((s, l) => {
      this.slots.push({
        ...s,
        forward: kernels[`f${l}`],
        update: kernels[`u${l}`],
        inputGrad: kernels[`d${l}`],
        updateTransposed: kernels[`t${l}`],
      });
    });
    this.f32 = new Float32Array(this.memory.buffer);
    for (const [i, stage] of this.stages.entries()) stage.attach(`c${i}`, kernels, this.f32);
  }

  /**
   * Where row `i` of the first dense kernel goes: after convolutions its inputs are pixels of
   * padded channels (`[h, w, c]` flattened with c padded to the last stage's outP).
   */
  private denseRow(l: number, i: number): number {
    const last = this.stages[this.stages.length - 1];
    if (l > 0 || !last) return i;
    const { filters } = last.plan;
    return Math.floor(i / filters) * last.outP + (i % filters);
  }

  /** Copies weights in, in the model's order (kernel then bias per layer). Shapes are checked by the caller. */
  setWeights(weights: readonly { data: Float32Array }[]): void {
    const f = this.f32;
    for (const [i, stage] of this.stages.entries())
      stage.setWeights(weights[2 * i].data, weights[2 * i + 1].data);
    const at = 2 * this.stages.length;
    this.slots.forEach((s, l) => {
      const kernel = weights[at + 2 * l].data;
      const { inputs, units } = s.plan;
      f.fill(0, s.w, s.w + s.inP * s.outP);
      if (s.wt >= 0) f.fill(0, s.wt, s.wt + s.outP * s.inP);
      for (let i = 0; i < inputs; i++) {
        const row = this.denseRow(l, i);
        for (let k = 0; k < units; k++) {
          const v = kernel[i * units + k];
          f[s.w + packed(s.inP, row, k)] = v;
          if (s.wt >= 0) f[s.wt + packed(s.outP, k, row)] = v;
        }
      }
      f.set(weights[at + 2 * l + 1].data, s.b);
    });
  }

  /** The weights in the model's order: `[kernel, bias]` per layer, as fresh arrays. */
  getWeights(): Float32Array[] {
    const f = this.f32;
    const out: Float32Array[] = [];
    for (const stage of this.stages) out.push(...stage.getWeights());
    this.slots.forEach((s, l) => {
      const { inputs, units } = s.plan;
      const kernel = new Float32Array(inputs * units);
      for (let i = 0; i < inputs; i++) {
        const row = this.denseRow(l, i);
        for (let k = 0; k < units; k++) kernel[i * units + k] = f[s.w + packed(s.inP, row, k)];
      }
      out.push(kernel, f.slice(s.b, s.b + units));
    });
    return out;
  }

  /**
   * One SGD step on the examples `order[from .. from + rows)` of `x` (flat, `plan.inputs` values
   * each) with labels `labels`: forward, loss, backward and `w -= learningRate · grad` with the
   * gradient of the batch-mean loss, as `model.fit` does for one batch.
   */
  step(
    x: Float32Array,
    labels: ArrayLike<number>,
    order: ArrayLike<number>,
    from: number,
    rows: number,
    learningRate: number,
  ): BatchLoss {
    this.checkRows(rows);
    this.transposePart(0, 1);
    const loss = this.rowsPart(0, 1, x, labels, order, from, rows);
    this.updatePart(0, 1, rows, learningRate);
    return loss;
  }

  private checkRows(rows: number): void {
    if (!Number.isSafeInteger(rows) || rows < 1 || rows > this.batchSize)
      throw new TypeError(`a batch holds 1 to ${this.batchSize} rows`);
  }

  /**
   * Phase 1 of a step, part `part` of `parts`: copies the convolution kernels the input
   * gradients need (transposed) before the update changes them (small: the dense layers keep
   * their transposed copy up to date in the update). Every part must end before phase 2.
   */
  transposePart(part: number, parts: number): void {
    for (let i = 1; i < this.stages.length; i++) {
      const [k0, k1] = share(this.stages[i].kP, part, parts);
      this.stages[i].transpose(k0, k1);
    }
  }

  /** Whether a step needs phase 1 (and the barrier after it). */
  get needsTranspose(): boolean {
    return this.stages.length > 1;
  }

  /**
   * Phase 2, part `part` of `parts`: for this part's rows of the batch, forward, loss and the
   * backward chain of activation gradients. The batch's rows are split evenly, to the row (the
   * kernels take any number of rows), so padding is never computed. Every part must end before
   * phase 3.
   */
  rowsPart(
    part: number,
    parts: number,
    x: Float32Array,
    labels: ArrayLike<number>,
    order: ArrayLike<number>,
    from: number,
    rows: number,
  ): BatchLoss {
    const f = this.f32;
    const [r0, r1] = share(rows, part, parts);
    if (r0 === r1) return { lossSum: 0, correct: 0 };
    const { inputs } = this.plan;
    const m = r1 - r0;
    const batchLabels = new Int32Array(m);
    const into = this.input;
    const stride = this.inputStride;
    for (let r = 0; r < m; r++) {
      const e = order[from + r0 + r];
      f.set(x.subarray(e * inputs, (e + 1) * inputs), into + (r0 + r) * stride);
      batchLabels[r] = labels[e];
    }
    for (const stage of this.stages) stage.forward(r0, r1);
    const bytes = (floats: number): number => floats * 4;
    for (const s of this.slots) {
      s.forward(
        bytes(s.x + r0 * s.inP),
        bytes(s.w),
        bytes(s.y + r0 * s.outP),
        bytes(s.b),
        m,
        bytes(s.outP),
        s.inP,
        1,
      );
    }
    const last = this.slots[this.slots.length - 1];
    const logits = f.subarray(last.y + r0 * last.outP, last.y + r1 * last.outP);
    const grad = f.subarray(last.dz + r0 * last.outP, last.dz + r1 * last.outP);
    const loss = softmaxCrossEntropy(logits, grad, batchLabels, m, rows, this.plan.classes, last.outP);
    for (let l = this.slots.length - 1; l >= 0; l--) {
      const s = this.slots[l];
      const dx = this.dx + r0 * this.dxStride;
      if (l === 0 && !s.inputGrad) break;
      s.inputGrad?.(
        bytes(s.dz + r0 * s.outP),
        bytes(s.wt),
        bytes(dx),
        bytes(this.zeros),
        m,
        bytes(s.inP),
        s.outP,
        1,
      );
      if (l === 0) break;
      const prev = this.slots[l - 1];
      const relu = prev.plan.activation === 'relu';
      const ins = s.plan.inputs;
      for (let r = r0; r < r1; r++) {
        const at = r * prev.outP;
        const src = this.dx + r * this.dxStride;
        for (let j = 0; j < ins; j++) {
          const g = f[src + j];
          f[prev.dz + at + j] = relu && f[prev.y + at + j] <= 0 ? 0 : g;
        }
      }
    }
    for (let i = this.stages.length - 1; i >= 0; i--) {
      const last = i === this.stages.length - 1;
      const grad = last ? this.dx : this.stageGrads[i];
      const gradStride = last ? this.dxStride : this.stages[i].outputStride;
      this.stages[i].backward(r0, r1, grad, gradStride, i > 0 ? this.stageGrads[i - 1] : -1, this.zeros);
    }
    return loss;
  }

  /**
   * Phase 3, part `part` of `parts`: the SGD step on this part's columns of every kernel and
   * bias, from the whole batch's gradients. Every part must end before the next step.
   */
  updatePart(part: number, parts: number, rows: number, learningRate: number): void {
    const f = this.f32;
    const bytes = (floats: number): number => floats * 4;
    for (const stage of this.stages) {
      const [c0, c1] = share(stage.outP / GEMM_COLS, part, parts);
      stage.update(c0, c1, rows, learningRate);
    }
    for (const s of this.slots) {
      const [c0, c1] = share(s.outP / GEMM_COLS, part, parts);
      if (c0 === c1) continue;
      const j0 = c0 * GEMM_COLS;
      const j1 = c1 * GEMM_COLS;
      const w = bytes(s.w + packed(s.inP, 0, j0));
      s.update(bytes(s.x), bytes(s.dz + j0), w, w, s.inP, bytes(j1 - j0), rows, -learningRate);
      const wt = bytes(s.wt + packed(s.outP, j0, 0));
      s.updateTransposed?.(bytes(s.dz + j0), bytes(s.x), wt, wt, j1 - j0, bytes(s.inP), rows, -learningRate);
      for (let j = j0; j < Math.min(j1, s.plan.units); j++) {
        let sum = 0;
        for (let r = 0; r < rows; r++) sum += f[s.dz + r * s.outP + j];
        f[s.b + j] -= learningRate * sum;
      }
    }
  }
}

/** Part `part` of `parts` of the range [0, n), as [start, end): contiguous, sizes within one. */
function share(n: number, part: number, parts: number): [number, number] {
  return [Math.floor((n * part) / parts), Math.floor((n * (part + 1)) / parts)];
}

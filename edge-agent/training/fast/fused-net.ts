// One model's training state in WebAssembly memory: weights, activations and gradients laid out
// once, padded to the kernel's blocks, and a step that runs forward, softmax cross-entropy,
// backward and the SGD update over them without leaving that memory.
import type { WasmMemory } from '../../../shared/wasm/index.ts';
import {
  GEMM_COLS,
  GEMM_ROWS,
  type GemmFn,
  type GemmShape,
  instantiateGemms,
  kernelMemory,
} from './gemm-kernel.ts';
import { type BatchLoss, softmaxCrossEntropy } from './loss.ts';
import type { DenseLayerPlan, TrainingPlan } from './plan.ts';

const padCols = (n: number): number => Math.ceil(n / GEMM_COLS) * GEMM_COLS;
const padRows = (n: number): number => Math.ceil(n / GEMM_ROWS) * GEMM_ROWS;

/** Where one dense layer's buffers live (float offsets) and the kernels that work on them. */
interface DenseSlot {
  plan: DenseLayerPlan;
  inP: number;
  outP: number;
  /** kernel [inP, outP], bias [outP], the kernel transposed [outP, inP] (for the input gradient). */
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
}

/**
 * The training state of one model for batches of up to `batchSize` examples. Weights enter
 * and leave in TensorFlow.js's layout (`kernel [inputs, units]`, `bias [units]`, layer by layer).
 */
export class FusedNet {
  readonly memory: WasmMemory;
  private readonly slots: DenseSlot[] = [];
  private readonly rowsP: number;
  /** The input gradient of a layer, [rows, inP], before the previous layer's activation mask. */
  private readonly dx: number;
  private readonly zeros: number;
  private f32: Float32Array;

  constructor(
    readonly plan: TrainingPlan,
    readonly batchSize: number,
  ) {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1)
      throw new TypeError('batchSize must be a positive integer');
    this.rowsP = padRows(batchSize);
    let next = 0;
    const alloc = (floats: number): number => {
      const at = next;
      next += Math.ceil(floats / 4) * 4;
      return at;
    };
    const layout = plan.layers.map((layer) => ({
      layer,
      inP: padCols(layer.inputs),
      outP: padCols(layer.units),
    }));
    let x = alloc(this.rowsP * layout[0].inP);
    const pending: Omit<DenseSlot, 'forward' | 'update' | 'inputGrad'>[] = [];
    let widest = 0;
    for (const { layer, inP, outP } of layout) {
      const w = alloc(inP * outP);
      const b = alloc(outP);
      const wt = pending.length > 0 ? alloc(outP * inP) : -1;
      const y = alloc(this.rowsP * outP);
      const dz = alloc(this.rowsP * outP);
      pending.push({ plan: layer, inP, outP, w, b, wt, x, y, dz });
      widest = Math.max(widest, inP, outP);
      x = y;
    }
    this.dx = alloc(this.rowsP * widest);
    this.zeros = alloc(widest);
    this.memory = kernelMemory(next * 4);
    const shapes: Record<string, GemmShape> = {};
    pending.forEach((s, l) => {
      shapes[`f${l}`] = {
        saRow: s.inP * 4,
        saCol: 4,
        ldb: s.outP * 4,
        ldc: s.outP * 4,
        ldi: 0,
        relu: s.plan.activation === 'relu',
      };
      shapes[`u${l}`] = {
        saRow: 4,
        saCol: s.inP * 4,
        ldb: s.outP * 4,
        ldc: s.outP * 4,
        ldi: s.outP * 4,
        relu: false,
      };
      if (l > 0)
        shapes[`d${l}`] = {
          saRow: s.outP * 4,
          saCol: 4,
          ldb: s.inP * 4,
          ldc: s.inP * 4,
          ldi: 0,
          relu: false,
        };
    });
    const kernels = instantiateGemms(shapes, this.memory);
    pending.forEach((s, l) => {
      this.slots.push({
        ...s,
        forward: kernels[`f${l}`],
        update: kernels[`u${l}`],
        inputGrad: kernels[`d${l}`],
      });
    });
    this.f32 = new Float32Array(this.memory.buffer);
  }

  /** Copies weights in, in the model's order (kernel then bias per layer). Shapes are checked by the caller. */
  setWeights(weights: readonly { data: Float32Array }[]): void {
    const f = this.f32;
    this.slots.forEach((s, l) => {
      const kernel = weights[2 * l].data;
      const { inputs, units } = s.plan;
      for (let i = 0; i < inputs; i++) f.set(kernel.subarray(i * units, (i + 1) * units), s.w + i * s.outP);
      f.set(weights[2 * l + 1].data, s.b);
    });
  }

  /** The weights in the model's order: `[kernel, bias]` per layer, as fresh arrays. */
  getWeights(): Float32Array[] {
    const f = this.f32;
    const out: Float32Array[] = [];
    for (const s of this.slots) {
      const { inputs, units } = s.plan;
      const kernel = new Float32Array(inputs * units);
      for (let i = 0; i < inputs; i++)
        kernel.set(f.subarray(s.w + i * s.outP, s.w + i * s.outP + units), i * units);
      out.push(kernel, f.slice(s.b, s.b + units));
    }
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
    if (rows < 1 || rows > this.batchSize) throw new TypeError(`a batch holds 1 to ${this.batchSize} rows`);
    const f = this.f32;
    const first = this.slots[0];
    const { inputs } = this.plan;
    const batchLabels = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      const e = order[from + r];
      f.set(x.subarray(e * inputs, (e + 1) * inputs), first.x + r * first.inP);
      batchLabels[r] = labels[e];
    }
    const rowsP = padRows(rows);
    // Padding rows take no part in the gradient (their dz is zero) but must not hold a NaN.
    f.fill(0, first.x + rows * first.inP, first.x + rowsP * first.inP);
    const bytes = (floats: number): number => floats * 4;
    for (const s of this.slots)
      s.forward(bytes(s.x), bytes(s.w), bytes(s.y), bytes(s.b), rowsP, bytes(s.outP), s.inP, 1);
    const last = this.slots[this.slots.length - 1];
    const logits = f.subarray(last.y, last.y + rowsP * last.outP);
    const grad = f.subarray(last.dz, last.dz + rowsP * last.outP);
    grad.fill(0, rows * last.outP);
    const loss = softmaxCrossEntropy(logits, grad, batchLabels, rows, this.plan.classes, last.outP);
    for (let l = this.slots.length - 1; l >= 0; l--) {
      const s = this.slots[l];
      const { inputs: ins, units } = s.plan;
      if (s.inputGrad) {
        // The input gradient needs the kernel before this step's update.
        for (let i = 0; i < ins; i++) {
          const row = s.w + i * s.outP;
          for (let k = 0; k < units; k++) f[s.wt + k * s.inP + i] = f[row + k];
        }
        s.inputGrad(
          bytes(s.dz),
          bytes(s.wt),
          bytes(this.dx),
          bytes(this.zeros),
          rowsP,
          bytes(s.inP),
          s.outP,
          1,
        );
        const prev = this.slots[l - 1];
        const relu = prev.plan.activation === 'relu';
        for (let r = 0; r < rowsP; r++) {
          const at = r * prev.outP;
          const from = r * s.inP;
          for (let j = 0; j < ins; j++) {
            const g = f[this.dx + from + j];
            f[prev.dz + at + j] = relu && f[prev.y + at + j] <= 0 ? 0 : g;
          }
        }
      }
      s.update(bytes(s.x), bytes(s.dz), bytes(s.w), bytes(s.w), s.inP, bytes(s.outP), rowsP, -learningRate);
      for (let j = 0; j < units; j++) {
        let sum = 0;
        for (let r = 0; r < rowsP; r++) sum += f[s.dz + r * s.outP + j];
        f[s.b + j] -= learningRate * sum;
      }
    }
    return loss;
  }
}

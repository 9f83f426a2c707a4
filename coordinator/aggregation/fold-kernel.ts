// The typed-array engine's hot loop as a WebAssembly SIMD kernel: plain JS tops out near 3.5 GB/s here.
import { assembleModule, F32, F64, type FuncDef, I32, op, V128 } from './wasm-asm.ts';

/** Bytes each kernel call must cover a multiple of: 8 unrolled 16-byte vectors. */
export const KERNEL_STEP_BYTES = 128;

// Parameters of both kernels, then their locals.
const SRC = 0;
const ACC = 1;
const DST = 2;
const BYTES = 3;
const WEIGHT = 4;
const I = 5;
const WV = 6;
const X = 7;
const CHECK = 8; // fold: OR of (x - x) bits; foldNorm: f64x2 sum of squares of the low lanes
const CHECK_HIGH = 9; // foldNorm only: f64x2 sum of squares of the high lanes
const T = 10;

/**
 * The loop shared by both kernels: for i in [0, bytes), 8 vectors per step (unrolled),
 * `dst[i] = acc[i] + w * src[i]` in float32, plus `perVector` to check each source vector `x`.
 * Writing to `dst` rather than `acc` is what lets a rejected update leave the sum untouched.
 */
function loopBody(perVector: readonly number[]): number[] {
  const code: number[] = [...op.get(WEIGHT), ...op.f32x4Splat, ...op.set(WV), ...op.block, ...op.loop];
  code.push(...op.get(I), ...op.get(BYTES), ...op.i32GeU, ...op.brIf(1));
  for (let k = 0; k < KERNEL_STEP_BYTES / 16; k++) {
    const offset = 16 * k;
    code.push(...op.get(SRC), ...op.get(I), ...op.i32Add, ...op.v128Load(offset), ...op.set(X));
    code.push(...op.get(DST), ...op.get(I), ...op.i32Add);
    code.push(...op.get(ACC), ...op.get(I), ...op.i32Add, ...op.v128Load(offset));
    code.push(...op.get(X), ...op.get(WV), ...op.f32x4Mul, ...op.f32x4Add, ...op.v128Store(offset));
    code.push(...perVector);
  }
  code.push(...op.get(I), ...op.i32Const(KERNEL_STEP_BYTES), ...op.i32Add, ...op.set(I));
  code.push(...op.br(0), ...op.end, ...op.end);
  return code;
}

// One add per vector: a NaN or an infinity anywhere makes the lane sums non-finite. So can an
// overflow of finite values, which the caller tells apart by scanning the flagged chunk.
const finiteCheck = [...op.get(CHECK), ...op.get(X), ...op.f32x4Add, ...op.set(CHECK)];

// Squares are summed in float64: a float32 square cannot overflow it, so the sum is finite exactly
// when every value is, and one result serves both the finite check and the norm bound.
const squareSum = [
  ...op.get(X),
  ...op.f64x2PromoteLowF32x4,
  ...op.tee(T),
  ...op.get(T),
  ...op.f64x2Mul,
  ...op.get(CHECK),
  ...op.f64x2Add,
  ...op.set(CHECK),
  ...op.get(X),
  ...op.get(X),
  ...op.shuffleHighToLow,
  ...op.f64x2PromoteLowF32x4,
  ...op.tee(T),
  ...op.get(T),
  ...op.f64x2Mul,
  ...op.get(CHECK_HIGH),
  ...op.f64x2Add,
  ...op.set(CHECK_HIGH),
];

const PARAMS = [I32, I32, I32, I32, F32];

const FOLD: FuncDef = {
  name: 'fold',
  params: PARAMS,
  results: [I32],
  locals: [
    [1, I32],
    [3, V128],
  ],
  body: [...loopBody(finiteCheck), ...op.get(CHECK), ...op.get(CHECK), ...op.f32x4Sub, ...op.v128AnyTrue],
};

const FOLD_NORM: FuncDef = {
  name: 'foldNorm',
  params: PARAMS,
  results: [F64],
  locals: [
    [1, I32],
    [5, V128],
  ],
  body: [
    ...loopBody(squareSum),
    ...op.get(CHECK),
    ...op.get(CHECK_HIGH),
    ...op.f64x2Add,
    ...op.tee(T),
    ...op.f64x2ExtractLane(0),
    ...op.get(T),
    ...op.f64x2ExtractLane(1),
    ...op.f64Add,
  ],
};

/** The subset of the WebAssembly JS API used here (the project's TS libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number }) => { buffer: ArrayBuffer };
}

/** One kernel instance over its own memory. Pointers and lengths are byte offsets into `buffer`. */
export interface FoldKernel {
  readonly buffer: ArrayBuffer;
  /**
   * `dst = acc + w * src` over `bytes`; returns true when some source value may not be finite
   * (always when one is not; rarely also for huge finite values, whose lane sums overflow).
   */
  fold(src: number, acc: number, dst: number, bytes: number, w: number): boolean;
  /** As `fold`, returning the float64 sum of squares of the source (non-finite iff a value is). */
  foldNorm(src: number, acc: number, dst: number, bytes: number, w: number): number;
}

const PAGE_BYTES = 65536;
/** wasm32 memories end at 4 GiB. */
export const MAX_KERNEL_BYTES = 65536 * PAGE_BYTES;

let compiled: object | undefined;

/** Instantiates the kernels over a fresh zeroed memory of at least `bytes` bytes. */
export function createFoldKernel(bytes: number): FoldKernel {
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  compiled ??= new wasm.Module(assembleModule([FOLD, FOLD_NORM]));
  const memory = new wasm.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE_BYTES)) });
  const { exports } = new wasm.Instance(compiled, { env: { memory } });
  const fold = exports.fold as (s: number, a: number, d: number, b: number, w: number) => number;
  const foldNorm = exports.foldNorm as (s: number, a: number, d: number, b: number, w: number) => number;
  return {
    buffer: memory.buffer,
    fold: (src, acc, dst, n, w) => fold(src, acc, dst, n, w) !== 0,
    foldNorm,
  };
}

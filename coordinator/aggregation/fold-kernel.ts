// The typed-array engine's hot loop as a WebAssembly SIMD kernel: plain JS tops out near 3.5 GB/s here.
import { assembleModule, F32, F64, type FuncDef, I32, op, V128 } from '../../shared/wasm/index.ts';

/** Bytes each kernel call must cover a multiple of: 8 unrolled 16-byte vectors. */
export const KERNEL_STEP_BYTES = 128;

// Parameters of the kernel, then its locals.
const SRC = 0;
const ACC = 1;
const DST = 2;
const BYTES = 3;
const WEIGHT = 4;
const I = 5;
const WV = 6;
const X = 7;
const SQ_LOW = 8; // f64x2 sum of squares of the low lanes
const SQ_HIGH = 9; // f64x2 sum of squares of the high lanes
const T = 10;
const D = 11; // the vector just written to dst
const BAD = 12; // OR of (d - d) bits: zero exactly while every dst value is finite

/**
 * For i in [0, bytes), 8 vectors per step (unrolled): `dst[i] = acc[i] + w * src[i]` in float32,
 * the float64 sum of squares of `src`, and a check that every `dst` value stayed finite.
 * Writing to `dst` rather than `acc` is what lets a rejected update leave the sum untouched.
 */
function loopBody(): number[] {
  const code: number[] = [...op.get(WEIGHT), ...op.f32x4Splat, ...op.set(WV), ...op.block, ...op.loop];
  code.push(...op.get(I), ...op.get(BYTES), ...op.i32GeU, ...op.brIf(1));
  for (let k = 0; k < KERNEL_STEP_BYTES / 16; k++) {
    const offset = 16 * k;
    code.push(...op.get(SRC), ...op.get(I), ...op.i32Add, ...op.v128Load(offset), ...op.set(X));
    code.push(...op.get(DST), ...op.get(I), ...op.i32Add);
    code.push(...op.get(ACC), ...op.get(I), ...op.i32Add, ...op.v128Load(offset));
    code.push(
      ...op.get(X),
      ...op.get(WV),
      ...op.f32x4Mul,
      ...op.f32x4Add,
      ...op.tee(D),
      ...op.v128Store(offset),
    );
    // d - d is +0 for every finite d and NaN otherwise, so the OR stays all-zero bits exactly
    // while the sum is finite: a NaN or infinity in src, or a finite value whose weighted sum
    // overflows float32, both show here.
    code.push(...op.get(D), ...op.get(D), ...op.f32x4Sub, ...op.get(BAD), ...op.v128Or, ...op.set(BAD));
    // Squares are summed in float64: a float32 square cannot overflow it, so the sum is finite
    // exactly when every value is.
    code.push(...op.get(X), ...op.f64x2PromoteLowF32x4, ...op.tee(T), ...op.get(T), ...op.f64x2Mul);
    code.push(...op.get(SQ_LOW), ...op.f64x2Add, ...op.set(SQ_LOW));
    code.push(...op.get(X), ...op.get(X), ...op.shuffleHighToLow, ...op.f64x2PromoteLowF32x4);
    code.push(
      ...op.tee(T),
      ...op.get(T),
      ...op.f64x2Mul,
      ...op.get(SQ_HIGH),
      ...op.f64x2Add,
      ...op.set(SQ_HIGH),
    );
  }
  code.push(...op.get(I), ...op.i32Const(KERNEL_STEP_BYTES), ...op.i32Add, ...op.set(I));
  code.push(...op.br(0), ...op.end, ...op.end);
  return code;
}

const FOLD: FuncDef = {
  name: 'fold',
  params: [I32, I32, I32, I32, F32],
  results: [F64],
  locals: [
    [1, I32],
    [7, V128],
  ],
  body: [
    ...loopBody(),
    // Infinity when some dst value is not finite, else the source's sum of squares.
    ...op.f64Const(Number.POSITIVE_INFINITY),
    ...op.get(SQ_LOW),
    ...op.get(SQ_HIGH),
    ...op.f64x2Add,
    ...op.tee(T),
    ...op.f64x2ExtractLane(0),
    ...op.get(T),
    ...op.f64x2ExtractLane(1),
    ...op.f64Add,
    ...op.get(BAD),
    ...op.v128AnyTrue,
    ...op.select,
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
   * `dst = acc + w * src` over `bytes`; returns the float64 sum of squares of `src`, or a
   * non-finite number when some `src` value is not finite or some `dst` value overflowed.
   */
  fold(src: number, acc: number, dst: number, bytes: number, w: number): number;
}

const PAGE_BYTES = 65536;
/** wasm32 memories end at 4 GiB. */
export const MAX_KERNEL_BYTES = 65536 * PAGE_BYTES;

let compiled: object | undefined;

/** Instantiates the kernel over a fresh zeroed memory of at least `bytes` bytes. */
export function createFoldKernel(bytes: number): FoldKernel {
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  compiled ??= new wasm.Module(assembleModule([FOLD]));
  const memory = new wasm.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE_BYTES)) });
  const { exports } = new wasm.Instance(compiled, { env: { memory } });
  return {
    buffer: memory.buffer,
    fold: exports.fold as (s: number, a: number, d: number, b: number, w: number) => number,
  };
}

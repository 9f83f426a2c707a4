// The fast training path's one hot loop: a register-blocked float32 matrix product in WebAssembly
// SIMD, generated at start-up by shared/wasm (no toolchain, no committed binary, no native download).
import {
  assembleModule,
  compileModule,
  createMemory,
  F32,
  type FuncDef,
  I32,
  instantiateWithMemory,
  op,
  relaxedSimdAvailable,
  V128,
  type WasmMemory,
  type WasmModule,
} from '../../../shared/wasm/index.ts';
import { CONV_KERNEL_NAMES, type ConvKernels, convKernelDefs } from './conv-kernels.ts';

/**
 * Rows of C computed together (each row's A element is broadcast once per k); the rows left over
 * when m is not a multiple of this go one at a time.
 */
export const GEMM_ROWS = 4;
/** f32x4 vectors of C per row computed together. */
const GEMM_VECTORS = 2;
/** Columns of C computed together: N must be a multiple of this. */
export const GEMM_COLS = 4 * GEMM_VECTORS;
/** Steps of k per loop turn: K must be a multiple of this. */
export const GEMM_UNROLL = 1;
/** Bytes of one block of GEMM_COLS columns in a row. */
const BLOCK_BYTES = 4 * GEMM_COLS;

/** The byte strides of one product, fixed when its kernel is generated so loads take immediate offsets. */
export interface GemmShape {
  /** Bytes from A[i, k] to A[i + 1, k] and to A[i, k + 1]: a transposed A is just other strides. */
  saRow: number;
  saCol: number;
  /** Row strides of B, C and INIT in bytes; an INIT stride of 0 broadcasts one row (a bias). */
  ldb: number;
  ldc: number;
  ldi: number;
  /**
   * Bytes from one block of GEMM_COLS columns to the next in B, C and INIT; by default the next
   * 32 bytes of the row. A packed matrix keeps each block's rows contiguous (`ldb` 32 and `sbBlock`
   * rows · 32), so a product with few rows of A streams B instead of striding through it.
   */
  sbBlock?: number;
  scBlock?: number;
  siBlock?: number;
  /** `max(·, 0)` on the result. */
  relu: boolean;
  /**
   * Column blocks in the outer loop, rows inside: for a packed C of many rows (the SGD step on a
   * dense kernel), which then walks C block by block instead of touching every block per row.
   */
  columnsOuter?: boolean;
}

// Parameters.
const A = 0;
const B = 1;
const C = 2;
const INIT = 3;
const M = 4;
const N = 5;
const K = 6;
const ALPHA = 7;
// i32 locals.
const I = 8;
const J = 9;
const KK = 10;
const PB = 11;
const PC = 12;
const PI = 13;
const PA = 14;
const I32_LOCALS = 7;
/**
 * f32x4 vectors per row of a tile of `rows` rows: fewer rows, wider tiles (whole blocks of
 * GEMM_COLS), so about as many sums stay in flight.
 */
const tileVectors = (rows: number): number => (rows >= 3 ? GEMM_VECTORS : rows === 2 ? 4 : 8);
// v128 locals: the sums of the largest tile, a tile's B vectors, A's broadcast, alpha.
const MAX_ACC = Math.max(...Array.from({ length: GEMM_ROWS }, (_, i) => (i + 1) * tileVectors(i + 1)));
const ACC = PA + 1;
const BV = ACC + MAX_ACC;
const AV = BV + tileVectors(2);
const ALPHA_V = AV + 1;
const V128_LOCALS = MAX_ACC + tileVectors(2) + 2;

/** Byte offset of vector v of a tile's row from the row's first block (blocks `block` bytes apart). */
const vectorOffset = (v: number, block: number): number =>
  Math.floor(v / GEMM_VECTORS) * block + 16 * (v % GEMM_VECTORS);

/**
 * One step of k: the tile's loads of B, and per row of A one broadcast at an immediate offset
 * from the one A pointer. Unrolled by hand the loop runs slower: V8 then hoists every load of the
 * turn and spills the sums; one step a turn keeps all of them in registers (and V8 unrolls it
 * itself). A one-row tile uses each B vector once and keeps none.
 */
function kStep(s: GemmShape, fused: boolean, rows: number, vectors: number): number[] {
  const sb = s.sbBlock ?? BLOCK_BYTES;
  const acc = (r: number, v: number): number => ACC + r * vectors + v;
  const loadB = (v: number): number[] => [...op.get(PB), ...op.v128Load(vectorOffset(v, sb))];
  const code: number[] = [];
  if (rows > 1) for (let v = 0; v < vectors; v++) code.push(...loadB(v), ...op.set(BV + v));
  for (let r = 0; r < rows; r++) {
    code.push(...op.get(PA), ...op.v128Load32Splat(r * s.saRow), ...op.set(AV));
    for (let v = 0; v < vectors; v++) {
      const bv = rows > 1 ? op.get(BV + v) : loadB(v);
      if (fused) code.push(...op.get(AV), ...bv, ...op.get(acc(r, v)), ...op.f32x4RelaxedMadd);
      else code.push(...op.get(acc(r, v)), ...op.get(AV), ...bv, ...op.f32x4Mul, ...op.f32x4Add);
      code.push(...op.set(acc(r, v)));
    }
  }
  code.push(...op.get(PA), ...op.i32Const(s.saCol), ...op.i32Add, ...op.set(PA));
  code.push(...op.get(PB), ...op.i32Const(s.ldb), ...op.i32Add, ...op.set(PB));
  return code;
}

/** `base + J / BLOCK_BYTES · block` (J counts bytes of a plain row, BLOCK_BYTES a block). */
function blockOffset(base: number[], block: number): number[] {
  if (block === BLOCK_BYTES) return [...base, ...op.get(J), ...op.i32Add];
  return [...base, ...op.get(J), ...op.i32Const(block / BLOCK_BYTES), ...op.i32Mul, ...op.i32Add];
}

/**
 * One tile of `rows` rows and `vectors` f32x4 vectors of C at row I, column J:
 * `C = INIT + alpha · A · B` on it (then ReLU).
 */
function tile(s: GemmShape, fused: boolean, rows: number, vectors: number): number[] {
  const sb = s.sbBlock ?? BLOCK_BYTES;
  const sc = s.scBlock ?? BLOCK_BYTES;
  const si = s.siBlock ?? BLOCK_BYTES;
  const acc = (r: number, v: number): number => ACC + r * vectors + v;
  const code: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < vectors; v++) code.push(...op.v128Const0, ...op.set(acc(r, v)));
  }
  // PA = A + i·saRow (row r of the block at r·saRow from it), PB = B + block j.
  code.push(...op.get(A), ...op.get(I), ...op.i32Const(s.saRow), ...op.i32Mul, ...op.i32Add, ...op.set(PA));
  code.push(...blockOffset(op.get(B), sb), ...op.set(PB));
  code.push(...op.get(K), ...op.set(KK), ...op.block, ...op.loop);
  code.push(...op.get(KK), ...op.i32Eqz, ...op.brIf(1));
  code.push(...kStep(s, fused, rows, vectors));
  code.push(...op.get(KK), ...op.i32Const(1), ...op.i32Sub, ...op.set(KK), ...op.br(0));
  code.push(...op.end, ...op.end);
  // Epilogue: PC = C + i·ldc + block j, PI = INIT + i·ldi + block j.
  code.push(
    ...blockOffset([...op.get(C), ...op.get(I), ...op.i32Const(s.ldc), ...op.i32Mul, ...op.i32Add], sc),
  );
  code.push(...op.set(PC));
  code.push(
    ...blockOffset([...op.get(INIT), ...op.get(I), ...op.i32Const(s.ldi), ...op.i32Mul, ...op.i32Add], si),
  );
  code.push(...op.set(PI));
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < vectors; v++) {
      code.push(...op.get(PC), ...op.get(PI), ...op.v128Load(r * s.ldi + vectorOffset(v, si)));
      code.push(...op.get(ALPHA_V), ...op.get(acc(r, v)), ...op.f32x4Mul, ...op.f32x4Add);
      if (s.relu) code.push(...op.v128Const0, ...op.f32x4Max);
      code.push(...op.v128Store(r * s.ldc + vectorOffset(v, sc)));
    }
  }
  return code;
}

/** `body` for I = 0, rows, 2·rows… while `I + rows <= M`; I is left at the first row not done. */
function rowLoop(rows: number, body: number[]): number[] {
  const code: number[] = [...op.block, ...op.loop];
  code.push(...op.get(I), ...op.i32Const(rows), ...op.i32Add, ...op.get(M), ...op.i32GtU, ...op.brIf(1));
  code.push(...body);
  code.push(...op.get(I), ...op.i32Const(rows), ...op.i32Add, ...op.set(I), ...op.br(0));
  code.push(...op.end, ...op.end);
  return code;
}

/** `body` for J = J, J + width… while `J + width <= N` (bytes); J is left at the first column not done. */
function columnLoop(widthBytes: number, body: number[]): number[] {
  const code: number[] = [...op.block, ...op.loop];
  code.push(
    ...op.get(J),
    ...op.i32Const(widthBytes),
    ...op.i32Add,
    ...op.get(N),
    ...op.i32GtU,
    ...op.brIf(1),
  );
  code.push(...body);
  code.push(...op.get(J), ...op.i32Const(widthBytes), ...op.i32Add, ...op.set(J), ...op.br(0));
  code.push(...op.end, ...op.end);
  return code;
}

/** Every column of a row block of `rows` rows: wide tiles, then GEMM_COLS wide ones for the rest. */
function rowBlock(s: GemmShape, fused: boolean, rows: number): number[] {
  const vectors = tileVectors(rows);
  const code: number[] = [...op.i32Const(0), ...op.set(J)];
  code.push(...columnLoop(16 * vectors, tile(s, fused, rows, vectors)));
  if (vectors > GEMM_VECTORS) code.push(...columnLoop(BLOCK_BYTES, tile(s, fused, rows, GEMM_VECTORS)));
  return code;
}

/**
 * `C[i, j] = INIT[i, j] + alpha · Σk A[i, k] · B[k, j]` (then `max(·, 0)` when `relu`) for
 * i < m, j < nBytes / 4, k < k: blocks of GEMM_ROWS rows, then one block of the rows left,
 * whose tiles are wider (so few rows still keep as many sums in flight). Each C element is summed
 * over k in order whatever its tile, so a split of the rows never changes a result. nBytes / 4
 * must be a multiple of GEMM_COLS.
 */
function gemmBody(s: GemmShape, fused: boolean): number[] {
  const code: number[] = [...op.get(ALPHA), ...op.f32x4Splat, ...op.set(ALPHA_V)];
  const counts = Array.from({ length: GEMM_ROWS }, (_, i) => GEMM_ROWS - i);
  if (s.columnsOuter) {
    const rows = counts.flatMap((r) => rowLoop(r, tile(s, fused, r, GEMM_VECTORS)));
    code.push(...op.i32Const(0), ...op.set(J));
    code.push(...columnLoop(BLOCK_BYTES, [...op.i32Const(0), ...op.set(I), ...rows]));
  } else {
    code.push(...op.i32Const(0), ...op.set(I));
    for (const r of counts) code.push(...rowLoop(r, rowBlock(s, fused, r)));
  }
  return code;
}

function gemmDef(name: string, shape: GemmShape, fused: boolean): FuncDef {
  for (const [key, value] of Object.entries(shape)) {
    if (key === 'relu' || key === 'columnsOuter') continue;
    const unit = key.endsWith('Block') ? BLOCK_BYTES : 4;
    if (!Number.isSafeInteger(value) || value < 0 || value % unit !== 0)
      throw new TypeError(`GEMM stride ${key} must be a non-negative multiple of ${unit} bytes`);
  }
  return {
    name,
    params: [I32, I32, I32, I32, I32, I32, I32, F32],
    results: [],
    locals: [
      [I32_LOCALS, I32],
      [V128_LOCALS, V128],
    ],
    body: gemmBody(shape, fused),
  };
}

/** `(a, b, c, init, m, nBytes, k, alpha)`: byte pointers into the kernel's memory; see gemmBody. */
export type GemmFn = (
  a: number,
  b: number,
  c: number,
  init: number,
  m: number,
  nBytes: number,
  k: number,
  alpha: number,
) => void;

const PROBE_SHAPE: GemmShape = { saRow: 16, saCol: 4, ldb: 32, ldc: 32, ldi: 0, relu: false };

/**
 * Whether the kernels take one fused multiply-add per step (relaxed SIMD) instead of a multiply
 * and an add: about 1.4× the GFLOP/s on a CPU with FMA (`npm run bench -- gemm`). Results then
 * round once per step instead of twice, still within float tolerance of TensorFlow.js.
 */
export function fusedKernels(): boolean {
  return relaxedSimdAvailable(() => assembleModule([gemmDef('probe', PROBE_SHAPE, true)]));
}

const PAGE_BYTES = 65536;
/** wasm32 memories end at 4 GiB; a shared memory must name its maximum up front. */
export const MAX_KERNEL_PAGES = 65536;

/** One module holding a kernel per named shape, importing its memory (shared between threads when asked). */
export function gemmModuleBytes(
  shapes: Readonly<Record<string, GemmShape>>,
  shared: boolean,
  fused = fusedKernels(),
): Uint8Array {
  for (const name of CONV_KERNEL_NAMES)
    if (name in shapes) throw new TypeError(`"${name}" is the name of one of the module's own helpers`);
  return assembleModule(
    [...Object.entries(shapes).map(([name, shape]) => gemmDef(name, shape, fused)), ...convKernelDefs()],
    shared ? { shared: true, maximumPages: MAX_KERNEL_PAGES } : {},
  );
}

/**
 * Modules compiled so far in this thread, by their shapes. V8 first runs a module's baseline code
 * and optimises it in the background as it runs: a model trained again (the next round) reuses
 * the optimised code instead of starting over. A few entries per model kind and batch size.
 */
const compiled = new Map<string, WasmModule>();
const MAX_COMPILED = 32;

/** Compiles (once per thread and shapes) and instantiates the kernels of `shapes` over `memory`. */
export function instantiateGemms<Names extends string>(
  shapes: Readonly<Record<Names, GemmShape>>,
  memory: WasmMemory,
): Record<Names, GemmFn> & ConvKernels {
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const fused = fusedKernels();
  const key = `${shared}|${fused}|${JSON.stringify(shapes)}`;
  let module = compiled.get(key);
  if (!module) {
    module = compileModule(gemmModuleBytes(shapes, shared, fused));
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
    compiled.set(key, module);
  }
  return instantiateWithMemory(module, memory) as unknown as Record<Names, GemmFn> & ConvKernels;
}

/** A memory of at least `bytes` bytes, shared between threads when asked. */
export function kernelMemory(bytes: number, shared = false): WasmMemory {
  const initial = Math.max(1, Math.ceil(bytes / PAGE_BYTES));
  if (initial > MAX_KERNEL_PAGES) throw new RangeError(`${bytes} bytes do not fit a wasm32 memory`);
  return shared
    ? createMemory({ initial, maximum: MAX_KERNEL_PAGES, shared: true })
    : createMemory({ initial });
}

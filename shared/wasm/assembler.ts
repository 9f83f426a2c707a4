// A tiny WebAssembly binary writer: just enough to build the aggregation and training kernels at
// start-up, with no toolchain and no build step (the bytes are generated, so nothing committed can drift).

/** Value types (binary codes). */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;

/** Unsigned LEB128, the integer encoding of the binary format. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  let rest = n >>> 0;
  do {
    let byte = rest & 0x7f;
    rest >>>= 7;
    if (rest !== 0) byte |= 0x80;
    out.push(byte);
  } while (rest !== 0);
  return out;
}

/** Signed LEB128, for i32.const immediates. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  let rest = n | 0;
  for (;;) {
    const byte = rest & 0x7f;
    rest >>= 7;
    const done = (rest === 0 && (byte & 0x40) === 0) || (rest === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function vec(items: readonly (readonly number[])[]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...uleb(bytes.length), ...bytes];
}

function section(id: number, body: readonly number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** Instructions used by the kernels. Memory offsets are byte offsets; alignments are log2. */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (local: number) => [0x20, ...uleb(local)],
  set: (local: number) => [0x21, ...uleb(local)],
  tee: (local: number) => [0x22, ...uleb(local)],
  i32Const: (n: number) => [0x41, ...sleb(n)],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32GeU: [0x4f],
  i32GtU: [0x4b],
  i32LtU: [0x49],
  i32Eqz: [0x45],
  i32LtS: [0x48],
  i32GtS: [0x4a],
  i32And: [0x71],
  i32Load: (offset: number) => [0x28, 2, ...uleb(offset)],
  i32Store: (offset: number) => [0x36, 2, ...uleb(offset)],
  f32Gt: [0x5e],
  f32Le: [0x5f],
  f32Add: [0x92],
  f32Mul: [0x94],
  /** Pushes a float32 constant (little-endian IEEE bits). */
  f32Const: (value: number) => [0x43, ...new Uint8Array(new Float32Array([value]).buffer)],
  f32Load: (offset: number) => [0x2a, 2, ...uleb(offset)],
  f32Store: (offset: number) => [0x38, 2, ...uleb(offset)],
  f64Add: [0xa0],
  /** Pushes a float64 constant (little-endian IEEE bits). */
  f64Const: (value: number) => {
    const bytes = new Uint8Array(new Float64Array([value]).buffer);
    return [0x44, ...bytes];
  },
  select: [0x1b],
  v128Load: (offset: number) => [0xfd, ...uleb(0x00), 4, ...uleb(offset)],
  v128Store: (offset: number) => [0xfd, ...uleb(0x0b), 4, ...uleb(offset)],
  /** Loads one float32 and fills every lane with it. */
  v128Load32Splat: (offset: number) => [0xfd, ...uleb(0x09), 2, ...uleb(offset)],
  v128Const0: [0xfd, ...uleb(0x0c), ...new Array<number>(16).fill(0)],
  /** Pushes a v128 of four int32 lanes. */
  i32x4Const: (lanes: readonly [number, number, number, number]) => [
    0xfd,
    ...uleb(0x0c),
    ...new Uint8Array(new Int32Array(lanes).buffer),
  ],
  i32x4Splat: [0xfd, ...uleb(0x11)],
  i32x4Add: [0xfd, ...uleb(0xae)],
  /** Lanes of the first operand where the third (a mask) is set, of the second elsewhere. */
  v128Bitselect: [0xfd, ...uleb(0x52)],
  /** Per lane, all ones where a > b (false when either is NaN). */
  f32x4Gt: [0xfd, ...uleb(0x44)],
  /** Moves lanes 2 and 3 of an f32x4 to lanes 0 and 1 (both operands are the same vector). */
  shuffleHighToLow: [0xfd, ...uleb(0x0d), 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15],
  f32x4Splat: [0xfd, ...uleb(0x13)],
  /** `a·b + c` (relaxed SIMD: fused where the CPU has FMA). */
  f32x4RelaxedMadd: [0xfd, ...uleb(0x105)],
  f64x2ExtractLane: (lane: number) => [0xfd, ...uleb(0x21), lane],
  v128Or: [0xfd, ...uleb(0x50)],
  v128AnyTrue: [0xfd, ...uleb(0x53)],
  f64x2PromoteLowF32x4: [0xfd, ...uleb(0x5f)],
  f32x4Add: [0xfd, ...uleb(0xe4)],
  f32x4Sub: [0xfd, ...uleb(0xe5)],
  f32x4Mul: [0xfd, ...uleb(0xe6)],
  f32x4Max: [0xfd, ...uleb(0xe9)],
  f64x2Add: [0xfd, ...uleb(0xf0)],
  f64x2Mul: [0xfd, ...uleb(0xf2)],
} as const;

/** `while (cond) body`: `cond` pushes an i32; `body` leaves the stack as it found it. */
export function whileLoop(cond: readonly number[], body: readonly number[]): number[] {
  return [
    ...op.block,
    ...op.loop,
    ...cond,
    ...op.i32Eqz,
    ...op.brIf(1),
    ...body,
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}

/**
 * `for (i = start; i < n; i += step) body` over i32 locals `i` and `n` (unsigned compare);
 * `start` pushes the first value.
 */
export function forLoop(
  i: number,
  start: readonly number[],
  n: number,
  step: number,
  body: readonly number[],
): number[] {
  return [
    ...start,
    ...op.set(i),
    ...whileLoop(
      [...op.get(i), ...op.get(n), ...op.i32LtU],
      [...body, ...op.get(i), ...op.i32Const(step), ...op.i32Add, ...op.set(i)],
    ),
  ];
}

/** One exported function: its signature, extra locals (type and count) and body (without the final `end`). */
export interface FuncDef {
  name: string;
  params: readonly number[];
  results: readonly number[];
  locals: readonly (readonly [count: number, type: number])[];
  body: readonly number[];
}

/** How the imported memory is declared: a plain one (default), or shared between threads up to `maximumPages`. */
export interface MemoryImport {
  shared?: boolean;
  maximumPages?: number;
}

/** A module that imports its memory as `env.memory` and exports every function by name. */
export function assembleModule(funcs: readonly FuncDef[], memory: MemoryImport = {}): Uint8Array {
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]);
  if (memory.shared && memory.maximumPages === undefined)
    throw new TypeError('a shared memory needs maximumPages');
  const limits = memory.shared
    ? [0x03, ...uleb(0), ...uleb(memory.maximumPages as number)]
    : [0x00, ...uleb(0)];
  const memoryImport = [...name('env'), ...name('memory'), 0x02, ...limits];
  const exportsList = funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]);
  const codes = funcs.map((f) => {
    const body = [...vec(f.locals.map(([count, type]) => [...uleb(count), type])), ...f.body, ...op.end];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(2, vec([memoryImport])),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(7, vec(exportsList)),
    ...section(10, vec(codes)),
  ]);
}

// The convolution stage's loops other than its matrix products, in WebAssembly SIMD beside the GEMM
// kernels (same module, same memory): col2im's sums, the bias gradient's column sums, 2×2 max
// pooling with its argmax, and the pooling gradient's scatter. In JavaScript they cost about a
// sixth of a CNN step; here a few percent.
import { F32, type FuncDef, forLoop, I32, op, V128, whileLoop } from '../../../shared/wasm/index.ts';

/**
 * `dst[j] += alpha · Σ_r src[r·ld + j]` for `nBytes / 4` columns (nBytes a multiple of 16): a
 * bias gradient folded into the SGD step. Each column is summed in row order, in float32.
 */
export type SumRowsFn = (
  src: number,
  rows: number,
  ldBytes: number,
  nBytes: number,
  dst: number,
  alpha: number,
) => void;
/**
 * 2×2 max pooling (stride 2) of `samples` images of `[h, w, c]` floats (`pixelBytes` = c·4, a
 * multiple of 16; `rowBytes` = w·pixelBytes; `sampleBytes` = h·rowBytes) into `pooledH·pooledW`
 * pixels per sample, contiguous from `out`; `argmax` gets, per pooled float, the byte address of
 * its maximum. The first maximum of a window wins a tie (top left, top right, bottom left, bottom
 * right), as TensorFlow's max pooling gradient picks it; a NaN never replaces a value.
 */
export type MaxPoolFn = (
  y: number,
  out: number,
  argmax: number,
  samples: number,
  pooledH: number,
  pooledW: number,
  rowBytes: number,
  pixelBytes: number,
  sampleBytes: number,
) => void;
/**
 * The pooling gradient: for each of `samples · perSample` pooled floats, the gradient `grad`
 * (`gradSampleBytes` per sample) stored at its argmax address plus `deltaBytes`, or 0 when `relu`
 * is 1 and the pooled input there is not positive (the ReLU before the pooling).
 */
export type PoolScatterFn = (
  argmax: number,
  grad: number,
  samples: number,
  perSample: number,
  gradSampleBytes: number,
  deltaBytes: number,
  relu: number,
) => void;

/**
 * im2col of `samples` images (`inStrideBytes` apart from `src`, pixels `inC` floats apart, the
 * first `channels` of them used) for a `size`×`size` convolution, stride 1, 'same' padding of
 * `pad`: per output pixel a row of `kPBytes` from `cols`, `size` spans (one per kernel row) of
 * `size · channels` floats, zeros where a tap falls outside the image. A row's bytes past its
 * taps are left as they are (zero).
 */
export type Im2colFn = (
  src: number,
  cols: number,
  samples: number,
  height: number,
  width: number,
  channels: number,
  inC: number,
  size: number,
  pad: number,
  kPBytes: number,
  inStrideBytes: number,
) => void;

export interface ConvKernels {
  im2col: Im2colFn;
  /**
   * The reverse of im2col for the input gradient: the rows of `cols` added, tap by tap and in
   * row order, into the `samples` images from `src` (zeroed by the caller); taps that fall
   * outside an image are dropped. Same parameters as im2col.
   */
  col2im: Im2colFn;
  sumRows: SumRowsFn;
  maxPool: MaxPoolFn;
  poolScatter: PoolScatterFn;
}

const zero = op.i32Const(0);
const addTo = (local: number, value: number[]): number[] => [
  ...op.get(local),
  ...value,
  ...op.i32Add,
  ...op.set(local),
];

/**
 * im2col (`scatter` false): each row of cols gathers its taps from the image, zeros outside it.
 * col2im (`scatter` true): each row of cols adds its taps into the image gradient (which the
 * caller zeroed) and taps outside the image are dropped. Same loops, same order of sums as the
 * rows of cols.
 */
function patchDef(scatter: boolean): FuncDef {
  const [IMG, COLS, S, H, W, CH, INC, SIZE, PAD, KPB, INSTRIDE] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [SI, OY, OX, KY, ROW, TO, IY, KX0, KX1, BASE, D, SP, NB, KX, SPANB, CHB] = [
    11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
  ];
  const add = (...terms: number[][]): number[] =>
    terms.flatMap((t, i) => (i === 0 ? t : [...t, ...op.i32Add]));
  const mul = (a: number[], b: number[]): number[] => [...a, ...b, ...op.i32Mul];
  const step = (local: number, bytes: number): number[] => addTo(local, op.i32Const(bytes));
  // NB bytes (a multiple of 4) at D: zeros, a copy from SP, or SP added in; whole vectors, then floats.
  const span = (kind: 'zero' | 'copy' | 'add', dst: number[], src: number[], bytes: number[]): number[] => {
    const value = (vector: boolean): number[] => {
      const load = vector ? op.v128Load(0) : op.f32Load(0);
      if (kind === 'zero') return vector ? [...op.v128Const0] : op.f32Const(0);
      if (kind === 'copy') return [...op.get(SP), ...load];
      return [...op.get(D), ...load, ...op.get(SP), ...load, ...(vector ? op.f32x4Add : op.f32Add)];
    };
    const turn = (bytesPerTurn: number): number[] => [
      ...op.get(D),
      ...value(bytesPerTurn === 16),
      ...(bytesPerTurn === 16 ? op.v128Store(0) : op.f32Store(0)),
      ...step(D, bytesPerTurn),
      ...(kind === 'zero' ? [] : step(SP, bytesPerTurn)),
      ...op.get(NB),
      ...op.i32Const(bytesPerTurn),
      ...op.i32Sub,
      ...op.set(NB),
    ];
    return [
      ...dst,
      ...op.set(D),
      ...src,
      ...(src.length > 0 ? op.set(SP) : []),
      ...bytes,
      ...op.set(NB),
      ...whileLoop([...op.get(NB), ...op.i32Const(16), ...op.i32GeU], turn(16)),
      ...whileLoop(op.get(NB), turn(4)),
    ];
  };
  const zeros = (dst: number[], bytes: number[]): number[] => (scatter ? [] : span('zero', dst, [], bytes));
  // Taps from `kx` on, `bytes` of them: between this row of cols (at TO) and the image.
  const taps = (kx: number[], bytes: number[]): number[] => {
    const inCols = add(op.get(TO), mul(kx, op.get(CHB)));
    return scatter ? span('add', pixel(kx), inCols, bytes) : span('copy', inCols, pixel(kx), bytes);
  };
  // The image pixel of tap kx in this kernel row: BASE + ((IY·W + OX + kx − PAD)·INC)·4.
  const pixel = (kx: number[]): number[] =>
    add(
      op.get(BASE),
      mul(
        add(mul(op.get(IY), op.get(W)), op.get(OX), kx, [...op.i32Const(0), ...op.get(PAD), ...op.i32Sub]),
        [...op.get(INC), ...op.i32Const(4), ...op.i32Mul],
      ),
    );
  const inside = [
    ...zeros(op.get(TO), mul(op.get(KX0), op.get(CHB))),
    ...zeros(
      add(op.get(TO), mul(op.get(KX1), op.get(CHB))),
      mul([...op.get(SIZE), ...op.get(KX1), ...op.i32Sub], op.get(CHB)),
    ),
    // One span of taps when they are contiguous (inC === channels), one per tap otherwise.
    ...op.block,
    ...op.block,
    ...op.get(INC),
    ...op.get(CH),
    ...op.i32Sub,
    ...op.brIf(0),
    ...taps(op.get(KX0), mul([...op.get(KX1), ...op.get(KX0), ...op.i32Sub], op.get(CHB))),
    ...op.br(1),
    ...op.end,
    ...forLoop(KX, op.get(KX0), KX1, 1, taps(op.get(KX), op.get(CHB))),
    ...op.end,
  ];
  const kernelRow = [
    ...add(op.get(ROW), mul(op.get(KY), op.get(SPANB))),
    ...op.set(TO),
    ...add(op.get(OY), op.get(KY)),
    ...op.get(PAD),
    ...op.i32Sub,
    ...op.set(IY),
    ...op.block,
    ...op.block,
    // A kernel row above or below the image (IY < 0 wraps above H): zeros, or nothing to add.
    ...op.get(IY),
    ...op.get(H),
    ...op.i32GeU,
    ...op.brIf(0),
    ...inside,
    ...op.br(1),
    ...op.end,
    ...zeros(op.get(TO), op.get(SPANB)),
    ...op.end,
  ];
  const outputPixel = [
    // KX0 = max(0, PAD − OX), KX1 = min(SIZE, W + PAD − OX)
    ...op.get(PAD),
    ...op.get(OX),
    ...op.i32Sub,
    ...op.i32Const(0),
    ...op.get(PAD),
    ...op.get(OX),
    ...op.i32Sub,
    ...op.i32Const(0),
    ...op.i32GtS,
    ...op.select,
    ...op.set(KX0),
    ...op.get(SIZE),
    ...add(op.get(W), op.get(PAD)),
    ...op.get(OX),
    ...op.i32Sub,
    ...op.get(SIZE),
    ...add(op.get(W), op.get(PAD)),
    ...op.get(OX),
    ...op.i32Sub,
    ...op.i32LtS,
    ...op.select,
    ...op.set(KX1),
    ...forLoop(KY, zero, SIZE, 1, kernelRow),
    ...addTo(ROW, op.get(KPB)),
  ];
  const body = [
    ...mul(mul(op.get(SIZE), op.get(CH)), op.i32Const(4)),
    ...op.set(SPANB),
    ...mul(op.get(CH), op.i32Const(4)),
    ...op.set(CHB),
    ...op.get(COLS),
    ...op.set(ROW),
    ...forLoop(SI, zero, S, 1, [
      ...add(op.get(IMG), mul(op.get(SI), op.get(INSTRIDE))),
      ...op.set(BASE),
      ...forLoop(OY, zero, H, 1, forLoop(OX, zero, W, 1, outputPixel)),
    ]),
  ];
  return {
    name: scatter ? 'col2im' : 'im2col',
    params: new Array<number>(11).fill(I32),
    results: [],
    locals: [[16, I32]],
    body,
  };
}

function sumRowsDef(): FuncDef {
  const [SRC, ROWS, LD, NB, DST, ALPHA] = [0, 1, 2, 3, 4, 5];
  const [J, R, P, ACC] = [6, 7, 8, 9];
  const rows = forLoop(R, zero, ROWS, 1, [
    ...op.get(ACC),
    ...op.get(P),
    ...op.v128Load(0),
    ...op.f32x4Add,
    ...op.set(ACC),
    ...addTo(P, op.get(LD)),
  ]);
  const columns = forLoop(J, zero, NB, 16, [
    ...op.v128Const0,
    ...op.set(ACC),
    ...op.get(SRC),
    ...op.get(J),
    ...op.i32Add,
    ...op.set(P),
    ...rows,
    ...op.get(DST),
    ...op.get(J),
    ...op.i32Add,
    ...op.get(DST),
    ...op.get(J),
    ...op.i32Add,
    ...op.v128Load(0),
    ...op.get(ALPHA),
    ...op.f32x4Splat,
    ...op.get(ACC),
    ...op.f32x4Mul,
    ...op.f32x4Add,
    ...op.v128Store(0),
  ]);
  return {
    name: 'sumRows',
    params: [I32, I32, I32, I32, I32, F32],
    results: [],
    locals: [
      [3, I32],
      [1, V128],
    ],
    body: columns,
  };
}

function maxPoolDef(): FuncDef {
  const [Y, OUT, ARG, S, PH, PW, ROW, PIX, SAMPLE] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [SI, PY, PX, C, BASE, Q] = [9, 10, 11, 12, 13, 14];
  // The window's top-left addresses per lane, its running maximum and argmax, a neighbour, a mask.
  const [FIRST, V, IDX, N, MASK] = [15, 16, 17, 18, 19];
  // The window's other three pixels, in tie order: right, below, below right.
  const neighbours = (d: number[]): number[] => [
    ...op.get(Q),
    ...d,
    ...op.i32Add,
    ...op.v128Load(0),
    ...op.tee(N),
    ...op.get(V),
    ...op.f32x4Gt,
    ...op.set(MASK),
    ...op.get(N),
    ...op.get(V),
    ...op.get(MASK),
    ...op.v128Bitselect,
    ...op.set(V),
    ...op.get(FIRST),
    ...d,
    ...op.i32x4Splat,
    ...op.i32x4Add,
    ...op.get(IDX),
    ...op.get(MASK),
    ...op.v128Bitselect,
    ...op.set(IDX),
  ];
  const right = op.get(PIX);
  const below = op.get(ROW);
  const belowRight = [...op.get(ROW), ...op.get(PIX), ...op.i32Add];
  const channels = forLoop(C, zero, PIX, 16, [
    ...op.get(BASE),
    ...op.get(C),
    ...op.i32Add,
    ...op.tee(Q),
    ...op.v128Load(0),
    ...op.set(V),
    ...op.get(Q),
    ...op.i32x4Splat,
    ...op.i32x4Const([0, 4, 8, 12]),
    ...op.i32x4Add,
    ...op.tee(FIRST),
    ...op.set(IDX),
    ...neighbours(right),
    ...neighbours(below),
    ...neighbours(belowRight),
    ...op.get(OUT),
    ...op.get(V),
    ...op.v128Store(0),
    ...op.get(ARG),
    ...op.get(IDX),
    ...op.v128Store(0),
    ...addTo(OUT, op.i32Const(16)),
    ...addTo(ARG, op.i32Const(16)),
  ]);
  // BASE: the window's top-left pixel, Y + s·SAMPLE + 2·py·ROW + 2·px·PIX.
  const windowBase = [
    ...op.get(Y),
    ...op.get(SI),
    ...op.get(SAMPLE),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.get(PY),
    ...op.get(ROW),
    ...op.i32Mul,
    ...op.i32Const(2),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.get(PX),
    ...op.get(PIX),
    ...op.i32Mul,
    ...op.i32Const(2),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.set(BASE),
  ];
  const body = forLoop(
    SI,
    zero,
    S,
    1,
    forLoop(PY, zero, PH, 1, forLoop(PX, zero, PW, 1, [...windowBase, ...channels])),
  );
  return {
    name: 'maxPool',
    params: [I32, I32, I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [
      [6, I32],
      [5, V128],
    ],
    body,
  };
}

function poolScatterDef(): FuncDef {
  const [ARG, GRAD, S, PER, GSB, DELTA, RELU] = [0, 1, 2, 3, 4, 5, 6];
  const [SI, I, G, ADDR] = [7, 8, 9, 10];
  const each = forLoop(I, zero, PER, 1, [
    ...op.get(ARG),
    ...op.i32Load(0),
    ...op.tee(ADDR),
    ...op.get(DELTA),
    ...op.i32Add,
    // select(0, grad, relu && y <= 0)
    ...op.f32Const(0),
    ...op.get(G),
    ...op.f32Load(0),
    ...op.get(RELU),
    ...op.get(ADDR),
    ...op.f32Load(0),
    ...op.f32Const(0),
    ...op.f32Le,
    ...op.i32And,
    ...op.select,
    ...op.f32Store(0),
    ...addTo(ARG, op.i32Const(4)),
    ...addTo(G, op.i32Const(4)),
  ]);
  const body = forLoop(SI, zero, S, 1, [
    ...op.get(GRAD),
    ...op.get(SI),
    ...op.get(GSB),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.set(G),
    ...each,
  ]);
  return {
    name: 'poolScatter',
    params: [I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [[4, I32]],
    body,
  };
}

/** The helpers' definitions, for a kernel module, each named as its ConvKernels member. */
export function convKernelDefs(): (FuncDef & { name: keyof ConvKernels })[] {
  return [patchDef(false), patchDef(true), sumRowsDef(), maxPoolDef(), poolScatterDef()] as (FuncDef & {
    name: keyof ConvKernels;
  })[];
}

/** The names the helpers take in a kernel module (no GEMM shape may take one). */
export const CONV_KERNEL_NAMES: readonly (keyof ConvKernels)[] = convKernelDefs().map((d) => d.name);

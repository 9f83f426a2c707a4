// The subset of the WebAssembly JS API the kernels use (the project's TypeScript libs do not declare it).
import { setFlagsFromString } from 'node:v8';

/** A WebAssembly memory: plain, or shared between worker threads. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** A compiled module: instantiating it again reuses its machine code, optimised tier included. */
export type WasmModule = object;

/** Compiles `bytes` (synchronously). */
export function compileModule(bytes: Uint8Array): WasmModule {
  return new wasm.Module(bytes);
}

/** Instantiates `module` (or compiles `bytes` first) with `env.memory`; returns the exports. */
export function instantiateWithMemory(
  code: Uint8Array | WasmModule,
  memory: WasmMemory,
): Record<string, unknown> {
  const module = code instanceof Uint8Array ? new wasm.Module(code) : code;
  return new wasm.Instance(module, { env: { memory } }).exports;
}

/** A new memory of `initial` pages (64 KiB each); shared ones need a `maximum`. */
export function createMemory(descriptor: {
  initial: number;
  maximum?: number;
  shared?: boolean;
}): WasmMemory {
  return new wasm.Memory(descriptor);
}

/**
 * Whether modules may use relaxed SIMD (`f32x4.relaxed_madd`, one fused multiply-add on CPUs with
 * FMA). Node 22 has it on; Node 20's V8 has the finished feature behind a flag, turned on here
 * (process-wide, before any module that uses it compiles). `LOOM_WASM_RELAXED_SIMD=0` turns it off.
 * `probe` is a module that uses it.
 */
export function relaxedSimdAvailable(probe: () => Uint8Array): boolean {
  if (relaxedSimd === undefined) {
    if (process.env.LOOM_WASM_RELAXED_SIMD === '0') relaxedSimd = false;
    else {
      const bytes = probe();
      if (!wasm.validate(bytes)) setFlagsFromString('--experimental-wasm-relaxed-simd');
      relaxedSimd = wasm.validate(bytes);
    }
  }
  return relaxedSimd;
}
let relaxedSimd: boolean | undefined;

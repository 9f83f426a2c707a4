// The subset of the WebAssembly JS API the kernels use (the project's TypeScript libs do not declare it).

/** A WebAssembly memory: plain, or shared between worker threads. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

interface WasmApi {
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

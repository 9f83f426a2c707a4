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

/** Compiles `bytes` and instantiates them with `env.memory`; returns the exports. */
export function instantiateWithMemory(bytes: Uint8Array, memory: WasmMemory): Record<string, unknown> {
  return new wasm.Instance(new wasm.Module(bytes), { env: { memory } }).exports;
}

/** A new memory of `initial` pages (64 KiB each); shared ones need a `maximum`. */
export function createMemory(descriptor: {
  initial: number;
  maximum?: number;
  shared?: boolean;
}): WasmMemory {
  return new wasm.Memory(descriptor);
}

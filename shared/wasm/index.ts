// Public door of shared/wasm.

export type { FuncDef, MemoryImport } from './assembler.ts';
export { assembleModule, F32, F64, forLoop, I32, op, sleb, uleb, V128, whileLoop } from './assembler.ts';
export type { WasmMemory, WasmModule } from './runtime.ts';
export { compileModule, createMemory, instantiateWithMemory, relaxedSimdAvailable } from './runtime.ts';

// Public door of the fast training path (WebAssembly SIMD kernels, no native download).

export { FusedNet } from './fused-net.ts';
export type { LayerPlan, PlanResult, TrainingPlan } from './plan.ts';
export { planFromModel } from './plan.ts';
export type { PooledTrainingInput, PooledTrainingOutput } from './pool.ts';
export { DEFAULT_TRAINING_THREADS, FastTrainingPool } from './pool.ts';
export type { FastTrainingInput, FastTrainingOutput } from './train-fast.ts';
export { trainFast } from './train-fast.ts';

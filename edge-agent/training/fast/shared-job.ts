// What the threads that train one model together share: the job they are given, and the control
// cells (barrier, stop flag, per-thread loss figures) they coordinate through.
import type { WasmMemory } from '../../../shared/wasm/index.ts';
import { BARRIER_CELLS } from './barrier.ts';
import type { TrainingPlan } from './plan.ts';

/** Int32 control cells: the barrier's, then STOP (set by the agent), then the step's decision. */
export const CONTROL_STOP = BARRIER_CELLS;
export const CONTROL_DECISION = BARRIER_CELLS + 1;
export const CONTROL_CELLS = BARRIER_CELLS + 2;

/** The message each worker gets to train its part. Typed arrays are views on SharedArrayBuffers. */
export interface SharedTrainingJob {
  memory: WasmMemory;
  plan: TrainingPlan;
  batchSize: number;
  part: number;
  parts: number;
  x: Float32Array;
  labels: Int32Array;
  count: number;
  /** `epochs × count` example indices: the order of each epoch. */
  orders: Int32Array;
  epochs: number;
  learningRate: number;
  control: Int32Array;
  /** Per part: loss sum and correct count of the last epoch. */
  figures: Float64Array;
}

/** What a worker answers. */
export type WorkerReply =
  | { type: 'first-batch'; at: number }
  | { type: 'done'; stopped: boolean }
  | { type: 'failed'; message: string };

// The aggregation contract shared by both engines and by the round code that drives them.
import type { WeightSpec, WeightTensor } from '../../shared/tensors/index.ts';

/** The two interchangeable aggregation back ends. */
export type EngineName = 'typed-array' | 'tfjs';

/** Why an update was refused; sent back in `LoomError.details.reason`. */
export type RejectionReason = 'shape' | 'name' | 'dtype' | 'non-finite' | 'norm' | 'weight';

/** A running weighted sum of model updates (weight deltas) for one round. */
export interface Aggregator {
  /** Updates folded so far. */
  readonly count: number;
  /** Sum of the weights folded so far. */
  readonly totalWeight: number;
  /**
   * Validates `update` against the specs (names, order, shapes, dtype float32, every value
   * finite, optional L2 norm bound) and folds `weight * update` into the running sum. On a bad
   * update it throws LoomError('LOOM_ERR_UPDATE_REJECTED') with `details.reason` (a
   * {@link RejectionReason}) and leaves the running sum exactly as it was. `weight` must be a
   * finite number > 0 (else reason 'weight').
   */
  fold(update: readonly WeightTensor[], weight: number): void;
  /**
   * The weighted average of the folded updates (sum / totalWeight) as float32 tensors that do not
   * alias the running sum. It closes the round: a later `fold` throws LOOM_ERR_INVALID_ARGUMENT
   * (an engine may return memory it owns, already paid for when the aggregator was made). Calling
   * it again recomputes the same values. Throws LOOM_ERR_INVALID_ARGUMENT when nothing was folded.
   */
  average(): WeightTensor[];
  /** Frees memory and tensors. Idempotent; the aggregator cannot be used afterwards. */
  dispose(): void;
}

/** Options of {@link AggregationEngine.createAggregator}. */
export interface AggregatorOptions {
  /** Largest accepted L2 norm of one (unweighted) update. Default: no bound. */
  maxNorm?: number;
}

/** Makes aggregators; both engines give the same numbers to float tolerance. */
export interface AggregationEngine {
  readonly name: EngineName;
  createAggregator(specs: readonly WeightSpec[], options?: AggregatorOptions): Aggregator;
}

// The aggregation contract shared by both engines and by the round code that drives them.
import type { WeightSpec, WeightTensor } from '../../shared/tensors/index.ts';

/** The two interchangeable aggregation back ends. */
export type EngineName = 'typed-array' | 'tfjs';

/** Why an update was refused; sent back in `LoomError.details.reason`. */
export type RejectionReason = 'shape' | 'name' | 'dtype' | 'non-finite' | 'overflow' | 'norm' | 'weight';

/** Options of one `Aggregator.fold`. */
export interface FoldOptions {
  /**
   * Scale the update down to this L2 norm when its norm is larger (clipping), so no update can
   * weigh in by its size. Default: no clipping.
   */
  clipNorm?: number;
}

/** What one fold did. */
export interface FoldReport {
  /** L2 norm of the update as sent (before any clipping), summed in float64. */
  norm: number;
  /** Factor the update was multiplied by before folding: 1, or clipNorm / norm when clipped. */
  scale: number;
}

/** A running weighted sum of model updates (weight deltas) for one round. */
export interface Aggregator {
  /** Updates folded so far. */
  readonly count: number;
  /** Sum of the weights folded so far. */
  readonly totalWeight: number;
  /**
   * Validates `update` against the specs (names, order, shapes, dtype float32, every value
   * finite, optional L2 norm bound) and folds `weight * scale * update` into the running sum,
   * where `scale` clips the update to `options.clipNorm`. On a bad update — including one whose
   * weighted values would overflow the float32 sum (reason 'overflow') — it throws
   * LoomError('LOOM_ERR_UPDATE_REJECTED') with `details.reason` (a {@link RejectionReason}) and
   * leaves the running sum exactly as it was. `weight` must be a finite number > 0 (else reason
   * 'weight'). The norm bound of the aggregator applies to the norm before clipping.
   */
  fold(update: readonly WeightTensor[], weight: number, options?: FoldOptions): FoldReport;
  /**
   * Validates `update` as `fold` does (structure, finite values, norm bound) and returns its L2
   * norm without folding it: the running sum is not changed.
   */
  measure(update: readonly WeightTensor[]): number;
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

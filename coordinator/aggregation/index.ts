// Public door of coordinator/aggregation: streaming weighted averaging of model updates.
export { createAggregationEngine, ENGINE_NAMES } from './engine.ts';
export type {
  AggregationEngine,
  Aggregator,
  AggregatorOptions,
  EngineName,
  FoldOptions,
  FoldReport,
  RejectionReason,
} from './types.ts';
export { applyAverageDelta, l2Norm } from './weights-math.ts';

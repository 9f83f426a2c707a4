// Public door of edge-agent/training.

export type { EvaluateLocallyOptions, LocalEvaluationResult } from './local-evaluator.ts';
export { evaluateLocally } from './local-evaluator.ts';
export type { LocalTrainingResult, TrainLocallyOptions } from './local-trainer.ts';
export { TrainingDataCache, trainLocally } from './local-trainer.ts';

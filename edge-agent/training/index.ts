// Public door of edge-agent/training.

export type { PooledTrainingInput, PooledTrainingOutput, TrainingPlan } from './fast/index.ts';
export { DEFAULT_TRAINING_THREADS, FastTrainingPool, planFromModel, trainFast } from './fast/index.ts';
export type { EvaluateLocallyOptions, LocalEvaluationResult } from './local-evaluator.ts';
export { evaluateLocally } from './local-evaluator.ts';
export type { LocalTrainingResult, TrainingPath, TrainLocallyOptions } from './local-trainer.ts';
export {
  defaultTrainingPath,
  TRAINING_PATHS,
  TrainingDataCache,
  tfjsTrainingPath,
  trainLocally,
} from './local-trainer.ts';

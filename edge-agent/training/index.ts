// Public door of edge-agent/training.

export type { LocalTrainingResult, TrainLocallyOptions } from './local-trainer.ts';
export { TrainingDataCache, trainLocally } from './local-trainer.ts';

// Public door of edge-agent/training.

export type { LocalTrainingResult, TrainLocallyOptions } from './local-trainer.ts';
export { releaseTrainingData, trainLocally } from './local-trainer.ts';

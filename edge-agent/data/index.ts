// Public door of edge-agent/data: local training data, read on the agent and never uploaded.

export type { DataProblem } from './check.ts';
export { assertDatasetFits, checkDataset, dataProblemsError } from './check.ts';
export type { DatasetManifest } from './fingerprint.ts';
export { datasetFingerprint, datasetManifest, manifestFingerprint } from './fingerprint.ts';
export type { DatasetSplit } from './holdout.ts';
export { datasetSeed, splitDataset } from './holdout.ts';
export { writeIdx } from './idx.ts';
export { inferFormat, loadDataset } from './load.ts';
export type { MnistSlice } from './mnist.ts';
export { assertMnistInstalled, readMnist } from './mnist.ts';
export type { DatasetSummary, FeatureStats, SummaryOptions } from './summary.ts';
export {
  SUMMARY_MAX_FEATURE_GROUPS,
  SUMMARY_MAX_LABELS,
  SUMMARY_MIN_EXAMPLES_FOR_FEATURE_STATS,
  summarizeDataset,
} from './summary.ts';
export type { DataFormat, LoadOptions, LocalDataset } from './types.ts';

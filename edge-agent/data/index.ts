// Public door of edge-agent/data: local training data, read on the agent and never uploaded.

export { checkDatasetShape } from './check.ts';
export { writeIdx } from './idx.ts';
export { inferFormat, loadDataset } from './load.ts';
export type { MnistSlice } from './mnist.ts';
export { readMnist } from './mnist.ts';
export type { DataFormat, LoadOptions, LocalDataset } from './types.ts';

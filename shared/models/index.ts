// Public door of shared/models.

export type {
  Activation,
  CnnArchitecture,
  LogisticArchitecture,
  MlpArchitecture,
  ModelArchitecture,
  TfjsArchitecture,
} from './architecture.ts';
export { architectureParamCount, describeArchitecture, parseArchitecture } from './architecture.ts';
export type { TfjsModelJson } from './artifact.ts';
export { toModelJson, toWeightsBin } from './artifact.ts';
export {
  buildModel,
  initialWeights,
  modelSignature,
  modelTopology,
  modelWeightSpecs,
  readWeights,
  writeWeights,
} from './build.ts';
export type { Evaluation } from './evaluate.ts';
export { evaluateClassifier } from './evaluate.ts';

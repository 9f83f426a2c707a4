// Public door of shared/tensors.

export type { WireTensor } from './codec.ts';
export {
  blobDataOffset,
  blobToWeights,
  concatWeightData,
  decodeTensors,
  encodeTensors,
  sha256Hex,
  splitWeightData,
  weightsToBlob,
} from './codec.ts';
export type { DType, WeightSpec, WeightTensor } from './weights.ts';
export {
  addWeights,
  assertMatchesSpecs,
  countParams,
  sizeOf,
  specsOf,
  subtractWeights,
} from './weights.ts';

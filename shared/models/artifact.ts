// TensorFlow.js layers-model artifacts (model.json + weights.bin) that tf.loadLayersModel loads.
import type { WeightTensor } from '../tensors/index.ts';
import { concatWeightData } from '../tensors/index.ts';

export interface TfjsModelJson {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: null;
  modelTopology: Record<string, unknown>;
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: 'float32' }[] }[];
  userDefinedMetadata?: Record<string, unknown>;
}

/**
 * The model.json for `weights`, whose single weights file is fetched from `weightsPath`
 * (relative to the model.json URL, as tf.loadLayersModel resolves it).
 */
export function toModelJson(
  topology: Record<string, unknown>,
  weights: readonly WeightTensor[],
  weightsPath: string,
  metadata?: Record<string, unknown>,
): TfjsModelJson {
  return {
    format: 'layers-model',
    generatedBy: 'loom',
    convertedBy: null,
    modelTopology: topology,
    weightsManifest: [
      {
        paths: [weightsPath],
        weights: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype })),
      },
    ],
    ...(metadata ? { userDefinedMetadata: metadata } : {}),
  };
}

/** The weights.bin that goes with `toModelJson`. */
export function toWeightsBin(weights: readonly WeightTensor[]): Buffer {
  return concatWeightData(weights);
}

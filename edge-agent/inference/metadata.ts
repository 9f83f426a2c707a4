// Open Inference Protocol v2 metadata documents for the server and for a model.

import { INPUT_NAME } from './request.ts';
import type { ServedModel } from './types.ts';

interface TensorMetadata {
  name: string;
  datatype: string;
  /** `-1` marks the batch dimension. */
  shape: number[];
}

/** The OIP v2 model metadata document. */
export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** Model metadata (`GET /v2/models/:name[/versions/:v]`): `versions` lists every loaded one. */
export function modelMetadata(served: ServedModel, versions: readonly number[]): ModelMetadata {
  return {
    name: served.name,
    versions: versions.map(String),
    platform: 'tensorflowjs',
    inputs: [{ name: INPUT_NAME, datatype: 'FP32', shape: [-1, ...served.inputShape] }],
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, served.classes] },
      { name: 'class', datatype: 'INT64', shape: [-1, 1] },
    ],
  };
}

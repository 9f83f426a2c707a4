// Turns an architecture into a TensorFlow.js model, and moves weights in and out of models.
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../errors/index.ts';
import { assertMatchesSpecs, type WeightSpec, type WeightTensor } from '../tensors/index.ts';
import { CNN_LAYERS, type ModelArchitecture } from './architecture.ts';

/**
 * Builds a fresh, uncompiled model with newly initialised weights. A model too large for memory
 * is LOOM_ERR_MODEL_SPEC, not a crash.
 */
export async function buildModel(arch: ModelArchitecture): Promise<tf.LayersModel> {
  try {
    return await buildModelNow(arch);
  } catch (err) {
    if (
      err instanceof RangeError ||
      /too large|Invalid (typed )?array length|out of memory/i.test(String(err))
    ) {
      throw new LoomError(
        'LOOM_ERR_MODEL_SPEC',
        `the model is too large to build: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
}

async function buildModelNow(arch: ModelArchitecture): Promise<tf.LayersModel> {
  switch (arch.kind) {
    case 'mlp': {
      const layers: tf.layers.Layer[] = arch.layers.map((units, i) =>
        tf.layers.dense({
          name: `dense_${i}`,
          units,
          activation: i === arch.layers.length - 1 ? 'softmax' : arch.activation,
          // After a flatten layer the first dense layer takes its flat output, not the input shape
          // (given both, TensorFlow.js warns that the ranks differ on every build).
          ...(i === 0 && arch.inputShape.length === 1 ? { inputShape: arch.inputShape } : {}),
        }),
      );
      if (arch.inputShape.length > 1)
        layers.unshift(tf.layers.flatten({ name: 'flatten', inputShape: arch.inputShape }));
      return tf.sequential({ layers });
    }
    case 'logistic': {
      const layers: tf.layers.Layer[] = [
        tf.layers.dense({
          name: 'dense_0',
          units: arch.classes,
          activation: 'softmax',
          ...(arch.inputShape.length === 1 ? { inputShape: arch.inputShape } : {}),
        }),
      ];
      if (arch.inputShape.length > 1)
        layers.unshift(tf.layers.flatten({ name: 'flatten', inputShape: arch.inputShape }));
      return tf.sequential({ layers });
    }
    case 'cnn': {
      const [conv1, conv2] = CNN_LAYERS.conv;
      const conv = (name: string, filters: number, extra: Record<string, unknown> = {}) =>
        tf.layers.conv2d({
          name,
          filters,
          kernelSize: CNN_LAYERS.kernel,
          padding: 'same',
          activation: 'relu',
          ...extra,
        });
      const pool = (name: string) =>
        tf.layers.maxPooling2d({ name, poolSize: CNN_LAYERS.pool, strides: CNN_LAYERS.pool });
      return tf.sequential({
        layers: [
          conv('conv2d_0', conv1, { inputShape: arch.inputShape }),
          pool('max_pooling2d_0'),
          conv('conv2d_1', conv2),
          pool('max_pooling2d_1'),
          tf.layers.flatten({ name: 'flatten' }),
          tf.layers.dense({ name: 'dense_0', units: CNN_LAYERS.dense, activation: 'relu' }),
          tf.layers.dense({ name: 'dense_1', units: arch.classes, activation: 'softmax' }),
        ],
      });
    }
    case 'tfjs': {
      // A topology that fails half way leaves the weights of the layers built so far registered
      // and never freed. Without a weights manifest, modelFromJSON builds every layer before its
      // first await, so the variables it made are exactly those new when the call returns.
      const known = new Set(Object.keys(tf.engine().state.registeredVariables));
      let building: Promise<tf.LayersModel>;
      try {
        building = tf.models.modelFromJSON({
          modelTopology: arch.topology as tf.io.ModelJSON['modelTopology'],
        });
      } catch (err) {
        building = Promise.reject(err);
      }
      const made = Object.entries(tf.engine().state.registeredVariables).filter(([name]) => !known.has(name));
      try {
        return await building;
      } catch (err) {
        for (const [, variable] of made) variable.dispose();
        throw new LoomError('LOOM_ERR_MODEL_SPEC', `topology could not be built: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  }
}

/** Names are the layers' original weight names (`dense_0/kernel`), stable across processes. */
export function modelWeightSpecs(model: tf.LayersModel): WeightSpec[] {
  return model.weights.map((w) => ({
    name: w.originalName,
    shape: [...w.shape] as number[],
    dtype: 'float32',
  }));
}

/** Copies a model's weights out as float32 tensors. */
export function readWeights(model: tf.LayersModel): WeightTensor[] {
  return model.weights.map((w) => {
    const values = w.read();
    const data = values.dataSync() as Float32Array;
    return {
      name: w.originalName,
      shape: [...w.shape] as number[],
      dtype: 'float32',
      data: Float32Array.from(data),
    };
  });
}

/** Sets a model's weights; throws LOOM_ERR_TENSOR if they do not match the model. */
export function writeWeights(model: tf.LayersModel, weights: readonly WeightTensor[]): void {
  assertMatchesSpecs(modelWeightSpecs(model), weights);
  const tensors = weights.map((w) => tf.tensor(w.data, w.shape, 'float32'));
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}

/** Input shape (without the batch dimension) and number of classes of a built model. */
export function modelSignature(model: tf.LayersModel): { inputShape: number[]; classes: number } {
  // A Sequential topology without layers builds, but has neither inputs nor outputs.
  if (!model.inputs?.length || !model.outputs?.length) {
    throw new LoomError(
      'LOOM_ERR_MODEL_SPEC',
      'the model has no layers: it needs an input and a class output',
    );
  }
  const input = model.inputs[0].shape.slice(1);
  const output = model.outputs[0].shape.slice(1);
  if (input.some((d) => d === null) || output.length !== 1 || output[0] === null) {
    throw new LoomError('LOOM_ERR_MODEL_SPEC', 'the model needs a fixed input shape and a 1-D class output');
  }
  return { inputShape: input as number[], classes: output[0] as number };
}

/** Builds the architecture once and returns its initial weights and signature; disposes the model. */
export async function initialWeights(
  arch: ModelArchitecture,
): Promise<{ weights: WeightTensor[]; inputShape: number[]; classes: number }> {
  const model = await buildModel(arch);
  try {
    return { weights: readWeights(model), ...modelSignature(model) };
  } finally {
    model.dispose();
  }
}

/** The model's topology as it goes into a model.json. */
export function modelTopology(model: tf.LayersModel): Record<string, unknown> {
  return model.toJSON(null, false) as unknown as Record<string, unknown>;
}

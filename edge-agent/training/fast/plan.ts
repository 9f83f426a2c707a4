// Which models the fast training path can train: a chain of the layer kinds it has kernels for,
// read from the built TensorFlow.js model so built-in and uploaded topologies are judged alike.
import type * as tf from '@tensorflow/tfjs';

/** A dense layer `act(x · kernel + bias)`; its weights are `kernel [inputs, units]` then `bias [units]`. */
export interface DenseLayerPlan {
  kind: 'dense';
  inputs: number;
  units: number;
  activation: 'relu' | 'linear' | 'softmax';
}

/**
 * A 2-D convolution over `[height, width, channels]` images, stride 1, 'same' padding:
 * `act(conv(x, kernel) + bias)`; its weights are `kernel [size, size, channels, filters]` then
 * `bias [filters]`. Its output is `[height, width, filters]`.
 */
export interface ConvLayerPlan {
  kind: 'conv2d';
  height: number;
  width: number;
  channels: number;
  filters: number;
  size: number;
  activation: 'relu' | 'linear';
}

/** 2×2 max pooling, stride 2, 'valid' padding, over `[height, width, channels]`; no weights. */
export interface PoolLayerPlan {
  kind: 'maxpool2d';
  height: number;
  width: number;
  channels: number;
}

export type LayerPlan = ConvLayerPlan | PoolLayerPlan | DenseLayerPlan;

/**
 * A model the fast path trains: its layers in order (convolutions and poolings first, then
 * dense layers), the last a softmax dense layer.
 */
export interface TrainingPlan {
  inputs: number;
  classes: number;
  layers: LayerPlan[];
}

/** Either a plan, or why the model trains with TensorFlow.js instead (for the log line). */
export type PlanResult = { plan: TrainingPlan } | { unsupported: string };

/** Layer settings that change what a step computes beyond the kernels (a regularizer adds to the loss). */
const UNSUPPORTED_SETTINGS = [
  'kernelRegularizer',
  'biasRegularizer',
  'activityRegularizer',
  'kernelConstraint',
  'biasConstraint',
];

const pair = (v: unknown): number[] | undefined =>
  Array.isArray(v) && v.length === 2 ? v.map(Number) : typeof v === 'number' ? [v, v] : undefined;
const isPair = (v: unknown, n: number): boolean => {
  const p = pair(v);
  return p !== undefined && p[0] === n && p[1] === n;
};

/** Why a Conv2D or MaxPooling2D layer's settings are not ones the fast path has kernels for. */
function spatialUnsupported(kind: string, name: string, config: Record<string, unknown>): string | undefined {
  if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast')
    return `${name} is not channels-last`;
  if (kind === 'Conv2D') {
    const size = pair(config.kernelSize);
    if (!size || size[0] !== size[1]) return `${name} has a kernel that is not square`;
    if (!isPair(config.strides ?? 1, 1)) return `${name} has a stride other than 1`;
    if (!isPair(config.dilationRate ?? 1, 1)) return `${name} is dilated`;
    if (config.padding !== 'same') return `${name} has padding other than 'same'`;
    return undefined;
  }
  if (!isPair(config.poolSize, 2) || !isPair(config.strides ?? config.poolSize, 2))
    return `${name} is not a 2×2 pooling of stride 2`;
  if (config.padding !== undefined && config.padding !== 'valid') return `${name} has 'same' padding`;
  return undefined;
}

/**
 * Reads the plan of a Sequential model of Conv2D ('same' padding, stride 1) and 2×2 MaxPooling2D
 * layers, then Flatten and Dense layers (hidden activations relu or linear, the last softmax,
 * with biases, no regularizers or constraints).
 */
export function planFromModel(model: tf.LayersModel): PlanResult {
  if (model.getClassName() !== 'Sequential')
    return { unsupported: `a ${model.getClassName()} model (only Sequential)` };
  const inputShape = model.inputs[0]?.shape.slice(1);
  if (!inputShape || inputShape.some((d) => d === null))
    return { unsupported: 'an input shape that is not fixed' };
  let features = (inputShape as number[]).reduce((a, b) => a * b, 1);
  const inputs = features;
  const layers: LayerPlan[] = [];
  // The image shape while layers are still spatial; undefined once flattened.
  let image: [number, number, number] | undefined =
    inputShape.length === 3 ? (inputShape as [number, number, number]) : undefined;
  for (const layer of model.layers) {
    const kind = layer.getClassName();
    const config = layer.getConfig() as Record<string, unknown>;
    if (kind === 'Flatten') {
      image = undefined;
      continue;
    }
    if (kind !== 'Dense' && kind !== 'Conv2D' && kind !== 'MaxPooling2D')
      return { unsupported: `a ${kind} layer (${layer.name})` };
    for (const key of UNSUPPORTED_SETTINGS) {
      if (config[key] !== null && config[key] !== undefined)
        return { unsupported: `${layer.name} has a ${key}` };
    }
    if (kind !== 'Dense') {
      if (!image || layers.some((l) => l.kind === 'dense'))
        return {
          unsupported: `a ${kind} layer (${layer.name}) that is not on an image before the dense layers`,
        };
      const why = spatialUnsupported(kind, layer.name, config);
      if (why) return { unsupported: why };
      const [height, width, channels] = image;
      if (kind === 'MaxPooling2D') {
        if (height < 2 || width < 2) return { unsupported: `${layer.name} pools an image smaller than 2×2` };
        layers.push({ kind: 'maxpool2d', height, width, channels });
        image = [Math.floor(height / 2), Math.floor(width / 2), channels];
      } else {
        if (config.useBias === false) return { unsupported: `${layer.name} has no bias` };
        const activation = String(config.activation);
        if (activation !== 'relu' && activation !== 'linear')
          return { unsupported: `the ${activation} activation (${layer.name})` };
        const filters = Number(config.filters);
        const size = (pair(config.kernelSize) as number[])[0];
        layers.push({ kind: 'conv2d', height, width, channels, filters, size, activation });
        image = [height, width, filters];
      }
      features = image[0] * image[1] * image[2];
      continue;
    }
    if (image) return { unsupported: `${layer.name} is a dense layer on an image without a Flatten` };
    if (config.useBias === false) return { unsupported: `${layer.name} has no bias` };
    const activation = String(config.activation);
    if (activation !== 'relu' && activation !== 'linear' && activation !== 'softmax')
      return { unsupported: `the ${activation} activation (${layer.name})` };
    const units = Number(config.units);
    layers.push({ kind: 'dense', inputs: features, units, activation });
    features = units;
    image = undefined;
  }
  const last = layers[layers.length - 1];
  if (last?.kind !== 'dense' || last.activation !== 'softmax')
    return { unsupported: 'a last layer that is not a softmax dense layer' };
  if (layers.slice(0, -1).some((l) => l.kind === 'dense' && l.activation === 'softmax'))
    return { unsupported: 'a softmax activation before the last layer' };
  return { plan: { inputs, classes: last.units, layers } };
}

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

export type LayerPlan = DenseLayerPlan;

/** A model the fast path trains: its layers in order, the last a softmax dense layer. */
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

/**
 * Reads the plan of a Sequential model of Flatten and Dense layers (hidden activations relu or
 * linear, the last softmax, with biases, no regularizers or constraints).
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
  for (const layer of model.layers) {
    const kind = layer.getClassName();
    const config = layer.getConfig() as Record<string, unknown>;
    if (kind === 'Flatten') continue;
    if (kind !== 'Dense') return { unsupported: `a ${kind} layer (${layer.name})` };
    for (const key of UNSUPPORTED_SETTINGS) {
      if (config[key] !== null && config[key] !== undefined)
        return { unsupported: `${layer.name} has a ${key}` };
    }
    if (config.useBias === false) return { unsupported: `${layer.name} has no bias` };
    const activation = String(config.activation);
    if (activation !== 'relu' && activation !== 'linear' && activation !== 'softmax')
      return { unsupported: `the ${activation} activation (${layer.name})` };
    const units = Number(config.units);
    layers.push({ kind: 'dense', inputs: features, units, activation });
    features = units;
  }
  const last = layers[layers.length - 1];
  if (last?.activation !== 'softmax')
    return { unsupported: 'a last layer that is not a softmax dense layer' };
  if (layers.slice(0, -1).some((l) => l.activation === 'softmax'))
    return { unsupported: 'a softmax activation before the last layer' };
  return { plan: { inputs, classes: last.units, layers } };
}

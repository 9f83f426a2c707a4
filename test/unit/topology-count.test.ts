// The weight count read from a topology's JSON matches what TensorFlow.js builds from it.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { largestDimension, topologyParamCount } from '../../shared/models/topology-count.ts';

function topologyOf(model: tf.Sequential): Record<string, unknown> {
  return model.toJSON(null, false) as unknown as Record<string, unknown>;
}

describe('topologyParamCount', () => {
  const models: [string, () => tf.Sequential][] = [
    [
      'the MNIST MLP',
      () =>
        tf.sequential({
          layers: [
            tf.layers.dense({ units: 200, inputShape: [784], activation: 'relu' }),
            tf.layers.dense({ units: 200, activation: 'relu' }),
            tf.layers.dense({ units: 10, activation: 'softmax' }),
          ],
        }),
    ],
    [
      "the FedAvg paper's CNN",
      () =>
        tf.sequential({
          layers: [
            tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 5, padding: 'same' }),
            tf.layers.maxPooling2d({ poolSize: 2 }),
            tf.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu' }),
            tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
            tf.layers.flatten(),
            tf.layers.dense({ units: 512, activation: 'relu' }),
            tf.layers.dropout({ rate: 0.5 }),
            tf.layers.dense({ units: 10, activation: 'softmax', useBias: false }),
          ],
        }),
    ],
    [
      'a strided, normalised, reshaped network',
      () =>
        tf.sequential({
          layers: [
            tf.layers.reshape({ inputShape: [784], targetShape: [28, 28, 1] }),
            tf.layers.conv2d({ filters: 8, kernelSize: [3, 5], strides: [2, 1] }),
            tf.layers.batchNormalization(),
            tf.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' }),
            tf.layers.globalAveragePooling2d({}),
            tf.layers.dense({ units: 4 }),
          ],
        }),
    ],
  ];

  for (const [name, make] of models) {
    it(`counts ${name} as TensorFlow.js builds it`, () => {
      const model = make();
      try {
        expect(topologyParamCount(topologyOf(model))).toBe(model.countParams());
      } finally {
        model.dispose();
      }
    });
  }

  it('counts a topology far too large to build without building it', () => {
    const topology = {
      class_name: 'Sequential',
      config: {
        layers: [{ class_name: 'Dense', config: { units: 1024, batch_input_shape: [null, 2 ** 31] } }],
      },
    };
    expect(topologyParamCount(topology)).toBe(2 ** 31 * 1024 + 1024);
  });

  it('gives undefined for what it cannot follow, and largestDimension still sees the sizes', () => {
    const functional = { class_name: 'Functional', config: { layers: [] } };
    expect(topologyParamCount(functional)).toBeUndefined();
    const unknownLayer = {
      class_name: 'Sequential',
      config: {
        layers: [{ class_name: 'LSTM', config: { units: 2 ** 28, batch_input_shape: [null, 3, 4] } }],
      },
    };
    expect(topologyParamCount(unknownLayer)).toBeUndefined();
    expect(largestDimension(unknownLayer)).toBe(2 ** 28);
    // Numbers outside sizing keys (a dropout seed, a rate) do not count.
    expect(largestDimension({ config: { seed: 2 ** 40, rate: 0.5 } })).toBe(0);
  });
});

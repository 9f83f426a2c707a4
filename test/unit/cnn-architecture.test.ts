// The built-in CNN: parsing, its parameter count (counted, from its topology and as built) and its layers.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { LoomError } from '../../shared/errors/index.ts';
import {
  architectureParamCount,
  buildModel,
  describeArchitecture,
  modelSignature,
  modelTopology,
  parseArchitecture,
} from '../../shared/models/index.ts';
import { topologyParamCount } from '../../shared/models/topology-count.ts';

describe('the built-in cnn architecture', () => {
  it('takes MNIST defaults and has the FedAvg paper count of 1,663,370 parameters', async () => {
    const arch = parseArchitecture({ kind: 'cnn' });
    expect(arch).toEqual({ kind: 'cnn', inputShape: [28, 28, 1], classes: 10 });
    expect(architectureParamCount(arch)).toBe(1_663_370);
    expect(describeArchitecture(arch)).toBe('cnn 28x28x1-10');
    const model = await buildModel(arch);
    try {
      expect(model.countParams()).toBe(1_663_370);
      expect(topologyParamCount(modelTopology(model))).toBe(1_663_370);
      expect(modelSignature(model)).toEqual({ inputShape: [28, 28, 1], classes: 10 });
      expect(model.layers.map((l) => l.getClassName())).toEqual([
        'Conv2D',
        'MaxPooling2D',
        'Conv2D',
        'MaxPooling2D',
        'Flatten',
        'Dense',
        'Dense',
      ]);
      const conv = model.layers[0].getConfig();
      expect(conv).toMatchObject({ filters: 32, kernelSize: [5, 5], padding: 'same', activation: 'relu' });
      const out = model.predict(tf.zeros([2, 28, 28, 1])) as tf.Tensor;
      expect(out.shape).toEqual([2, 10]);
      out.dispose();
    } finally {
      model.dispose();
    }
  });

  it('takes another input shape and class count, counted as built', async () => {
    const arch = parseArchitecture({ kind: 'cnn', inputShape: [12, 10, 3], classes: 4 });
    const model = await buildModel(arch);
    try {
      expect(architectureParamCount(arch)).toBe(model.countParams());
    } finally {
      model.dispose();
    }
  });

  it('refuses bad shapes and classes with LOOM_ERR_MODEL_SPEC', () => {
    for (const bad of [
      { kind: 'cnn', inputShape: [28, 28] },
      { kind: 'cnn', inputShape: [2, 28, 1] },
      { kind: 'cnn', inputShape: [28, 28, 1000] },
      { kind: 'cnn', inputShape: [28, -1, 1] },
      { kind: 'cnn', classes: 1 },
      { kind: 'cnn', classes: 2.5 },
    ]) {
      try {
        parseArchitecture(bad);
        expect.unreachable(JSON.stringify(bad));
      } catch (err) {
        expect(err).toBeInstanceOf(LoomError);
        expect((err as LoomError).code).toBe('LOOM_ERR_MODEL_SPEC');
      }
    }
  });
});

// Dynamic batching of the edge inference server: concurrent requests for one model version are
// stacked into one prediction and split back, over a real local store, real MNIST images and
// real HTTP on 127.0.0.1.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MnistSlice, readMnist } from '../../edge-agent/data/index.ts';
import { type BatchingOptions, ModelServer, startInferenceServer } from '../../edge-agent/inference/index.ts';
import { type LocalModelStore, openLocalModelStore } from '../../edge-agent/store/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { buildModel, type ModelArchitecture, readWeights } from '../../shared/models/index.ts';

const architecture: ModelArchitecture = {
  kind: 'mlp',
  inputShape: [784],
  layers: [32, 10],
  activation: 'relu',
};

let dir: string;
let store: LocalModelStore;
let mnist: MnistSlice;

async function putVersion(name: string, version: number): Promise<void> {
  const model = await buildModel(architecture);
  try {
    await store.put({ name, version, architecture, weights: readWeights(model) });
  } finally {
    model.dispose();
  }
}

/** `n` MNIST test images from image `from` on, scaled to [0, 1], row-major. */
function rows(n: number, from = 0): Float32Array {
  const out = new Float32Array(n * 784);
  for (let i = 0; i < n; i++) {
    const k = (from + i) % 16;
    for (let j = 0; j < 784; j++) out[i * 784 + j] = mnist.images[k * 784 + j] / 255;
  }
  return out;
}

/** The unbatched answer: `inputs` alone through `server`'s loaded `name`@`version`. */
function alone(server: ModelServer, name: string, version: number, inputs: Float32Array) {
  const model = server.get(name, version)!.model;
  return tf.tidy(() => {
    const y = model.predict(tf.tensor(inputs, [inputs.length / 784, 784])) as tf.Tensor;
    return { p: y.dataSync() as Float32Array, c: Int32Array.from(y.argMax(-1).dataSync()) };
  });
}

async function withServer(batching: BatchingOptions, fn: (server: ModelServer) => Promise<void>, extra = {}) {
  const server = new ModelServer(store, { batching, ...extra });
  try {
    await server.load('mnist', 1);
    await fn(server);
  } finally {
    server.dispose();
  }
}

beforeAll(async () => {
  await initCompute();
  dir = await mkdtemp(join(tmpdir(), 'loom-batching-'));
  store = await openLocalModelStore(dir);
  for (const v of [1, 2]) await putVersion('mnist', v);
  await putVersion('digits', 1);
  mnist = await readMnist('test', { limit: 16 });
});

afterAll(async () => {
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('dynamic batching', () => {
  it('stacks concurrent requests for one version into one prediction and gives each its own rows, in order', async () => {
    await withServer({}, async (server) => {
      const sizes = [1, 5, 2, 8, 1, 3];
      const inputs = sizes.map((n, i) => rows(n, i * 3));
      const before = tf.memory().numTensors;
      const answers = await Promise.all(
        inputs.map((x, i) => server.predict('mnist', undefined, x, sizes[i])),
      );
      expect(tf.memory().numTensors).toBe(before);
      const counts = server.batchCounts('mnist')!;
      expect(counts).toEqual({ requests: 6, batches: 1, rows: 20, largestBatch: 6 });
      answers.forEach((a, i) => {
        const ref = alone(server, 'mnist', 1, inputs[i]);
        expect(a.version).toBe(1);
        expect(a.classes).toEqual(ref.c);
        expect(a.probabilities.length).toBe(sizes[i] * 10);
        for (let k = 0; k < ref.p.length; k++) expect(a.probabilities[k]).toBeCloseTo(ref.p[k], 5);
      });
    });
  });

  it('keeps a batch within maxBatchSize rows, and runs a larger request alone', async () => {
    await withServer({ maxBatchSize: 6 }, async (server) => {
      const sizes = [3, 3, 3, 3, 10];
      const answers = await Promise.all(sizes.map((n) => server.predict('mnist', undefined, rows(n), n)));
      expect(answers.map((a) => a.classes.length)).toEqual(sizes);
      expect(server.batchCounts('mnist')).toEqual({ requests: 5, batches: 3, rows: 22, largestBatch: 2 });
    });
  });

  it('never mixes versions in one batch, also across a version switch', async () => {
    await withServer({}, async (server) => {
      await server.load('mnist', 2);
      await server.load('mnist', 1);
      const calls: { version: number | undefined; x: Float32Array }[] = [];
      for (let i = 0; i < 12; i++)
        calls.push({ version: i % 3 === 0 ? 2 : undefined, x: rows(1 + (i % 4), i) });
      const first = calls.slice(0, 6).map((c) => server.predict('mnist', c.version, c.x, c.x.length / 784));
      // The switch happens while the first requests are queued.
      const switched = server.load('mnist', 2);
      const second = calls.slice(6).map((c) => server.predict('mnist', c.version, c.x, c.x.length / 784));
      await switched;
      const answers = await Promise.all([...first, ...second]);
      answers.forEach((a, i) => {
        if (calls[i].version === 2) expect(a.version).toBe(2);
        const ref = alone(server, 'mnist', a.version, calls[i].x);
        expect(a.classes).toEqual(ref.c);
        for (let k = 0; k < ref.p.length; k++) expect(a.probabilities[k]).toBeCloseTo(ref.p[k], 5);
      });
      const v1 = server.batchCounts('mnist', 1)!;
      const v2 = server.batchCounts('mnist', 2)!;
      expect(v1.requests + v2.requests).toBe(12);
      expect(answers.filter((a) => a.version === 1).length).toBe(v1.requests);
    });
  });

  it('waits no longer than maxQueueDelayMs for company, and not at all once the batch is full', async () => {
    await withServer({ maxQueueDelayMs: 60_000, maxBatchSize: 4 }, async (server) => {
      // A full batch goes at once; with a minute of delay the test would time out otherwise.
      const full = await Promise.all(
        [1, 2, 3, 4].map((i) => server.predict('mnist', undefined, rows(1, i), 1)),
      );
      expect(full).toHaveLength(4);
      expect(server.batchCounts('mnist')!.batches).toBe(1);
    });
    await withServer({ maxQueueDelayMs: 100 }, async (server) => {
      const began = performance.now();
      await server.predict('mnist', undefined, rows(1), 1);
      const waited = performance.now() - began;
      // The lone request went when the delay ran out: not before it, and not held long after.
      expect(waited).toBeGreaterThanOrEqual(99);
      expect(waited).toBeLessThan(5_000);
    });
  });

  it('takes batching settings per model over the defaults', async () => {
    await withServer(
      { maxBatchSize: 2 },
      async (server) => {
        await server.load('digits', 1);
        await Promise.all([1, 2, 3, 4].map((i) => server.predict('mnist', undefined, rows(1, i), 1)));
        await Promise.all([1, 2, 3, 4].map((i) => server.predict('digits', undefined, rows(1, i), 1)));
        expect(server.batchCounts('mnist')!.batches).toBe(2);
        expect(server.batchCounts('digits')!.batches).toBe(1);
      },
      { modelBatching: { digits: { maxBatchSize: 8 } } },
    );
  });

  it('answers concurrent HTTP requests from one stacked prediction, and a bad one fails alone', async () => {
    await withServer({ maxQueueDelayMs: 200 }, async (server) => {
      const http = await startInferenceServer(server, { port: 0, log: createLogger('silent') });
      try {
        const post = (body: unknown) =>
          fetch(`${http.url}/v2/models/mnist/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          }).then(async (r) => ({ status: r.status, json: (await r.json()) as Record<string, unknown> }));
        const good = [1, 2, 3, 4].map((n, i) => ({ n, x: rows(n, i * 2) }));
        const answers = await Promise.all([
          ...good.map((g) =>
            post({
              id: `n${g.n}`,
              inputs: [{ name: 'input', shape: [g.n, 784], datatype: 'FP32', data: Array.from(g.x) }],
            }),
          ),
          post({ inputs: [{ name: 'input', shape: [2, 784], datatype: 'FP32', data: Array.from(rows(1)) }] }),
        ]);
        expect(answers[4].status).toBe(400);
        expect(answers[4].json.code).toBe('LOOM_ERR_INFERENCE_INPUT');
        good.forEach((g, i) => {
          expect(answers[i].status).toBe(200);
          expect(answers[i].json.id).toBe(`n${g.n}`);
          const outputs = answers[i].json.outputs as { name: string; data: number[] }[];
          expect(outputs[1].data).toEqual(Array.from(alone(server, 'mnist', 1, g.x).c));
        });
        expect(server.batchCounts('mnist')!.largestBatch).toBeGreaterThan(1);
      } finally {
        await http.close();
      }
    });
  });
});

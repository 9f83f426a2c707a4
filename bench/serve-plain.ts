// The plain server the serve benchmark compares the agent with: what an application team could
// write in a few lines (Hono + @hono/node-server + TensorFlow.js wasm), loading the same model
// artifact, one model.predict per request. Run as `node --import tsx bench/serve-plain.ts DIR`;
// prints `{"url": ...}` once listening.
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Hono } from 'hono';

const dir = process.argv[2];
await tf.setBackend('wasm');
const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
const weightData = new Uint8Array(await readFile(join(dir, 'weights.bin'))).buffer;
const model = await tf.loadLayersModel(
  tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest[0].weights,
    weightData,
  }),
);

const app = new Hono();
app.post('/v2/models/:name/infer', async (c) => {
  const body = await c.req.json();
  const input = body.inputs[0];
  const [probs, cls] = tf.tidy(() => {
    const y = model.predict(tf.tensor(input.data, input.shape)) as tf.Tensor;
    return [y, y.argMax(-1)];
  });
  const [p, k] = await Promise.all([probs.data(), cls.data()]);
  tf.dispose([probs, cls]);
  const n = input.shape[0];
  return c.json({
    model_name: c.req.param('name'),
    outputs: [
      { name: 'probabilities', shape: [n, p.length / n], datatype: 'FP32', data: Array.from(p) },
      { name: 'class', shape: [n, 1], datatype: 'INT64', data: Array.from(k) },
    ],
  });
});
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) =>
  console.log(JSON.stringify({ url: `http://127.0.0.1:${info.port}` })),
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));

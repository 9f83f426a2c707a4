// End-to-end tests of the edge inference server: a real model from the local store, real MNIST
// images and real HTTP on 127.0.0.1 speaking the Open Inference Protocol v2.

import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Level } from 'level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MnistSlice, readMnist } from '../../edge-agent/data/index.ts';
import { ModelServer, startInferenceServer } from '../../edge-agent/inference/index.ts';
import { type LocalModelStore, openLocalModelStore } from '../../edge-agent/store/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { buildModel, type ModelArchitecture, readWeights } from '../../shared/models/index.ts';
import { curlPost, HAVE_CURL, sendBody, sendEndless } from '../helpers/http-body.ts';

const architecture: ModelArchitecture = {
  kind: 'mlp',
  inputShape: [784],
  layers: [32, 10],
  activation: 'relu',
};

let dir: string;
let store: LocalModelStore;
let server: ModelServer;
let http: { port: number; url: string; close(): Promise<void> };
let mnist: MnistSlice;

/** Stores a freshly initialised model as `mnist`@`version` (each build has new random weights). */
async function putVersion(version: number): Promise<void> {
  const model = await buildModel(architecture);
  try {
    await store.put({ name: 'mnist', version, architecture, weights: readWeights(model) });
  } finally {
    model.dispose();
  }
}

/** Pixels of MNIST test image `i`, scaled to [0, 1]. */
function image(i: number): number[] {
  return Array.from(mnist.images.subarray(i * 784, (i + 1) * 784), (p) => p / 255);
}

async function request(
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${http.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function inferBody(data: unknown, shape: number[] = [1, 784], datatype = 'FP32') {
  return { inputs: [{ name: 'input', shape, datatype, data }] };
}

interface Output {
  name: string;
  shape: number[];
  datatype: string;
  data: number[];
}

beforeAll(async () => {
  await initCompute();
  dir = await mkdtemp(join(tmpdir(), 'loom-inference-'));
  store = await openLocalModelStore(dir);
  for (const version of [1, 2, 3]) await putVersion(version);
  mnist = await readMnist('test', { limit: 8 });
  server = new ModelServer(store);
  http = await startInferenceServer(server, { port: 0, log: createLogger('silent') });
});

afterAll(async () => {
  await http?.close();
  server?.dispose();
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the inference server', () => {
  it('is live but not ready (503) until a model is loaded', async () => {
    expect(await request('/v2/health/live')).toEqual({ status: 200, json: { live: true } });
    expect(await request('/v2/health/ready')).toEqual({ status: 503, json: { ready: false } });
    const infer = await request('/v2/models/mnist/infer', inferBody(image(0)));
    expect(infer.status).toBe(503);
    expect(infer.json.code).toBe('LOOM_ERR_MODEL_UNAVAILABLE');

    await server.load('mnist', 1);
    expect(await request('/v2/health/ready')).toEqual({ status: 200, json: { ready: true } });
    expect(await request('/v2/models/mnist/ready')).toEqual({
      status: 200,
      json: { name: 'mnist', ready: true },
    });
  });

  it('describes itself and the model in OIP v2 metadata', async () => {
    const meta = await request('/v2');
    expect(meta.status).toBe(200);
    expect(meta.json).toMatchObject({ name: 'loom-edge', extensions: ['binary_tensor_data'] });
    expect(typeof meta.json.version).toBe('string');

    const model = await request('/v2/models/mnist');
    expect(model).toEqual({
      status: 200,
      json: {
        name: 'mnist',
        versions: ['1'],
        platform: 'tensorflowjs',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 784] }],
        outputs: [
          { name: 'probabilities', datatype: 'FP32', shape: [-1, 10] },
          { name: 'class', datatype: 'INT64', shape: [-1, 1] },
        ],
      },
    });
    expect((await request('/v2/models/mnist/versions/1')).status).toBe(200);
  });

  it('classifies a real MNIST test image into 10 probabilities that sum to 1', async () => {
    const res = await request('/v2/models/mnist/infer', { id: 'req-1', ...inferBody(image(0)) });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: 'req-1', model_name: 'mnist', model_version: '1' });
    const [probs, cls] = res.json.outputs as Output[];
    expect(probs).toMatchObject({ name: 'probabilities', shape: [1, 10], datatype: 'FP32' });
    expect(probs.data).toHaveLength(10);
    expect(probs.data.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    expect(cls).toMatchObject({ name: 'class', shape: [1, 1], datatype: 'INT64' });
    expect(cls.data[0]).toBe(probs.data.indexOf(Math.max(...probs.data)));

    // The same answer as the model itself gives.
    const direct = await server.predict('mnist', undefined, Float32Array.from(image(0)), 1);
    probs.data.forEach((p, i) => {
      expect(p).toBeCloseTo(direct.probabilities[i], 6);
    });
  });

  it('takes a batch as nested UINT8 rows and returns only the outputs asked for', async () => {
    const rows = [0, 1, 2, 3].map((i) => Array.from(mnist.images.subarray(i * 784, (i + 1) * 784)));
    const res = await request('/v2/models/mnist/versions/1/infer', {
      ...inferBody(rows, [4, 784], 'UINT8'),
      outputs: [{ name: 'class' }],
    });
    expect(res.status).toBe(200);
    const outputs = res.json.outputs as Output[];
    expect(outputs.map((o) => o.name)).toEqual(['class']);
    expect(outputs[0].shape).toEqual([4, 1]);
    expect(outputs[0].data.every((c) => Number.isInteger(c) && c >= 0 && c < 10)).toBe(true);
  });

  it('accepts a single example shaped exactly like the model input', async () => {
    const res = await request('/v2/models/mnist/infer', inferBody(image(1), [784], 'FP64'));
    expect(res.status).toBe(200);
    expect((res.json.outputs as Output[])[0].shape).toEqual([1, 10]);
  });

  it('rejects a wrong shape with 400 and a message naming the shapes it takes', async () => {
    const res = await request('/v2/models/mnist/infer', inferBody(image(0), [28, 28]));
    expect(res.status).toBe(400);
    expect(res.json).toEqual({
      code: 'LOOM_ERR_INFERENCE_INPUT',
      error: 'input shape [28, 28] does not fit the model; expected [n, 784], [784]',
    });
  });

  it('rejects an unsupported datatype with 400', async () => {
    const res = await request('/v2/models/mnist/infer', inferBody(image(0), [1, 784], 'BYTES'));
    expect(res.status).toBe(400);
    expect(res.json.code).toBe('LOOM_ERR_INFERENCE_INPUT');
    expect(res.json.error).toMatch(/datatype "BYTES" is not supported/);
  });

  it('rejects wrong data length, non-numeric values, bad JSON and unknown names with 400', async () => {
    const cases: [unknown, RegExp][] = [
      [inferBody(image(0).slice(1)), /has 783 values, shape \[1, 784\] needs 784/],
      [inferBody([...image(0).slice(1), 'x']), /value 783 is not a number/],
      [
        inferBody(
          image(0).map(() => 300),
          [1, 784],
          'UINT8',
        ),
        /not a valid UINT8/,
      ],
      ['{"inputs": [', /not valid JSON/],
      [
        { inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: image(0) }] },
        /"pixels" is unknown/,
      ],
      [{ ...inferBody(image(0)), outputs: [{ name: 'logits' }] }, /output "logits" is unknown/],
      [{ inputs: [] }, /exactly one tensor/],
    ];
    for (const [body, message] of cases) {
      const res = await request('/v2/models/mnist/infer', body);
      expect(res.status).toBe(400);
      expect(res.json.code).toBe('LOOM_ERR_INFERENCE_INPUT');
      expect(res.json.error).toMatch(message);
      expect(JSON.stringify(res.json)).not.toMatch(/at .*\.ts:\d+/);
    }
  });

  it('returns 404 for an unknown model, version or route', async () => {
    const model = await request('/v2/models/cifar/infer', inferBody(image(0)));
    expect(model).toEqual({
      status: 404,
      json: { code: 'LOOM_ERR_NOT_FOUND', error: 'model "cifar" is not loaded' },
    });
    expect((await request('/v2/models/cifar')).status).toBe(404);
    expect((await request('/v2/models/mnist/versions/9/infer', inferBody(image(0)))).status).toBe(404);
    expect((await request('/v2/models/mnist/versions/abc')).status).toBe(404);
    expect((await request('/v2/nothing')).json.code).toBe('LOOM_ERR_NOT_FOUND');
  });

  it('refuses a body over 16 MiB', async () => {
    const res = await request(
      '/v2/models/mnist/infer',
      `{"inputs": [], "pad": "${'x'.repeat(16 * 1024 * 1024)}"}`,
    );
    expect(res.status).toBe(413);
    expect(res.json.code).toBe('LOOM_ERR_FRAME_TOO_LARGE');
  });

  it('swaps to a new version atomically while requests are in flight', async () => {
    let stop = false;
    let swapped = false;
    const seenAfterSwap: string[] = [];
    const worker = async (w: number): Promise<string[]> => {
      const versions: string[] = [];
      while (!stop) {
        // Requests sent before the swap may rightly be answered by version 1 after it.
        const sentAfterSwap = swapped;
        const res = await request('/v2/models/mnist/infer', inferBody(image(w % 8)));
        expect(res.status).toBe(200);
        const v = res.json.model_version as string;
        versions.push(v);
        if (sentAfterSwap) seenAfterSwap.push(v);
      }
      return versions;
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, 50));
    await server.load('mnist', 2);
    swapped = true;
    await new Promise((r) => setTimeout(r, 50));
    stop = true;
    const perWorker = await Promise.all(workers);

    for (const versions of perWorker) {
      expect(versions.length).toBeGreaterThan(0);
      // Once a worker has been answered by version 2 it never sees version 1 again.
      const first2 = versions.indexOf('2');
      if (first2 >= 0) expect(versions.slice(first2).every((v) => v === '2')).toBe(true);
    }
    expect(perWorker.flat()).toContain('1');
    expect(seenAfterSwap.length).toBeGreaterThan(0);
    expect(seenAfterSwap.every((v) => v === '2')).toBe(true);
  });

  it('keeps the served version and the most recently used other one loaded', async () => {
    expect((await request('/v2/models/mnist')).json.versions).toEqual(['1', '2']);
    expect((await request('/v2/models/mnist/versions/1/infer', inferBody(image(0)))).json.model_version).toBe(
      '1',
    );
    await server.load('mnist', 3);
    // Version 1 answered a request after version 2 was last used, so version 2 made way.
    expect((await request('/v2/models/mnist')).json.versions).toEqual(['1', '3']);
    expect((await request('/v2/models/mnist/infer', inferBody(image(0)))).json.model_version).toBe('3');
  });

  it('loads a stored version that is not loaded when a request names it', async () => {
    const res = await request('/v2/models/mnist/versions/2/infer', inferBody(image(0)));
    expect(res.status).toBe(200);
    expect(res.json.model_version).toBe('2');
    // The default version is never the one unloaded to make room.
    expect((await request('/v2/models/mnist')).json.versions).toEqual(['2', '3']);
    const meta = await request('/v2/models/mnist/versions/1');
    expect(meta.status).toBe(200);
    expect(meta.json.versions).toEqual(['1', '3']);
    expect((await request('/v2/models/mnist/infer', inferBody(image(0)))).json.model_version).toBe('3');
    expect(await request('/v2/models/mnist/versions/9/infer', inferBody(image(0)))).toEqual({
      status: 404,
      json: { code: 'LOOM_ERR_NOT_FOUND', error: 'model "mnist" version 9 is not in the local store' },
    });
  });

  it('answers concurrent requests for versions that push each other out, leaking nothing', async () => {
    // Warm both versions once so the count below compares like with like (two models loaded).
    await request('/v2/models/mnist/versions/2/infer', inferBody(image(0)));
    await request('/v2/models/mnist/versions/1/infer', inferBody(image(0)));
    const before = tf.memory().numTensors;
    const versions = Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? '1' : '2'));
    const answers = await Promise.all(
      versions.map((v, i) => request(`/v2/models/mnist/versions/${v}/infer`, inferBody(image(i % 8)))),
    );
    answers.forEach((res, i) => {
      expect(res.status).toBe(200);
      expect(res.json.model_version).toBe(versions[i]);
    });
    await request('/v2/models/mnist/versions/1/infer', inferBody(image(0)));
    expect((await request('/v2/models/mnist')).json.versions).toEqual(['1', '3']);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('does not leak tensors across 50 predictions', async () => {
    await request('/v2/models/mnist/infer', inferBody(image(0)));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) {
      const res = await request('/v2/models/mnist/infer', inferBody(image(i % 8)));
      expect(res.status).toBe(200);
    }
    await server.predict('mnist', undefined, new Float32Array(784 * 3), 3);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('loads the active version of every stored model at start, offline', async () => {
    const fresh = new ModelServer(store);
    try {
      await fresh.loadActive();
      expect(fresh.list().map((m) => `${m.name}@${m.version}`)).toEqual(['mnist@3']);
      expect(fresh.get('mnist')).toMatchObject({ inputShape: [784], classes: 10 });
    } finally {
      fresh.dispose();
    }
  });

  it('logs and skips a damaged stored model at start, and serves the others', async () => {
    const own = await mkdtemp(join(tmpdir(), 'loom-inference-damaged-'));
    try {
      const local = await openLocalModelStore(own);
      for (const name of ['digits', 'letters']) {
        const model = await buildModel(architecture);
        await local.put({ name, version: 1, architecture, weights: readWeights(model) });
        model.dispose();
      }
      await local.close();
      // Flip a byte of the stored weights of `letters`, as a failing disk might.
      const db = new Level<string, string>(join(own, 'models'));
      const blobs = db.sublevel<string, Uint8Array>('blob', { valueEncoding: 'view' });
      for await (const [key, value] of blobs.iterator()) {
        if (!key.startsWith('letters/')) continue;
        const damaged = Uint8Array.from(value);
        damaged[damaged.length - 1] ^= 0xff;
        await blobs.put(key, damaged);
      }
      await db.close();

      const reopened = await openLocalModelStore(own);
      const lines: string[] = [];
      const fresh = new ModelServer(reopened, {
        log: createLogger({ format: 'json', write: (l) => lines.push(l) }),
      });
      try {
        const failures = await fresh.loadActive();
        expect(failures.map((f) => f.code)).toEqual(['LOOM_ERR_INTEGRITY']);
        expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
          expect.objectContaining({
            level: 'error',
            model: 'letters',
            version: 1,
            code: 'LOOM_ERR_INTEGRITY',
          }),
        ]);
        expect(fresh.list().map((m) => `${m.name}@${m.version}`)).toEqual(['digits@1']);
        const served = await fresh.predict('digits', undefined, Float32Array.from(image(0)), 1);
        expect(served.version).toBe(1);
        const err = await fresh
          .predict('letters', 1, Float32Array.from(image(0)), 1)
          .catch((e: unknown) => e);
        expect(isLoomError(err, 'LOOM_ERR_INTEGRITY')).toBe(true);
      } finally {
        fresh.dispose();
        await reopened.close();
      }
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});

// No coordinator runs in this file's process: @hono/node-server replaces the global Request
// when the operator API starts, which hid the failure of chunked bodies on the agent.
describe('inference request bodies, sent with a Content-Length or chunked', () => {
  const body = () => JSON.stringify({ id: 'b', ...inferBody([image(0), image(1)], [2, 784]) });

  it('answers a body sent chunked in several writes exactly as one sent with a Content-Length', async () => {
    const url = `${http.url}/v2/models/mnist/infer`;
    const sized = await sendBody(url, body(), { framing: 'length' });
    const chunked = await sendBody(url, body(), { framing: 'chunked', pieces: 7 });
    expect(sized.status).toBe(200);
    expect(chunked.status).toBe(200);
    expect(JSON.parse(chunked.text)).toEqual(JSON.parse(sized.text));
  });

  it('answers a body that fetch streams (chunked) from a ReadableStream', async () => {
    const bytes = new TextEncoder().encode(body());
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(bytes.subarray(i, i + 1000));
        controller.close();
      },
    });
    const res = await fetch(`${http.url}/v2/models/mnist/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { outputs: Output[] }).outputs[0].shape).toEqual([2, 10]);
  });

  it.skipIf(!HAVE_CURL)('answers curl streaming its body chunked from stdin, and with a length', async () => {
    const url = `${http.url}/v2/models/mnist/infer`;
    for (const framing of ['chunked', 'length'] as const) {
      const res = await curlPost(url, body(), { framing });
      expect(res.status, framing).toBe(200);
      expect((JSON.parse(res.text) as { id: string }).id).toBe('b');
    }
  });

  it('refuses a chunked body over 16 MiB with 413 and answers the next request on the same connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const url = `${http.url}/v2/models/mnist/infer`;
      const big = `{"inputs": [], "pad": "${'x'.repeat(16 * 1024 * 1024)}"}`;
      const refused = await sendBody(url, big, { framing: 'chunked', pieces: 64, agent });
      expect(refused.status).toBe(413);
      expect(JSON.parse(refused.text)).toMatchObject({ code: 'LOOM_ERR_FRAME_TOO_LARGE' });
      const next = await sendBody(url, body(), { framing: 'chunked', agent });
      expect(next.status).toBe(200);
      // The rest of the refused body was read and dropped, so the connection stayed usable.
      expect(next.socket).toBe(refused.socket);
    } finally {
      agent.destroy();
    }
  });

  it('answers 413 to a chunked body that never ends while it is still arriving, then closes that connection', async () => {
    const reply = await sendEndless(`${http.url}/v2/models/mnist/infer`);
    expect(reply.status).toBe(413);
    expect(reply.stillSending).toBe(true);
    expect(JSON.parse(reply.text)).toMatchObject({ code: 'LOOM_ERR_FRAME_TOO_LARGE' });
    await reply.closed;
    // The server is fine afterwards.
    expect((await request('/v2/models/mnist/infer', inferBody(image(0)))).status).toBe(200);
  });

  it('refuses a Content-Length over 16 MiB before reading the body', async () => {
    const reply = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${http.url}/v2/models/mnist/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(64 * 1024 * 1024) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      // Only the start of the announced 64 MiB is ever sent.
      req.write('{"inputs": [');
    });
    expect(reply).toBe(413);
  });
});

describe('large batches', () => {
  /** `n` MNIST test images (cycling through the ones read), row-major, scaled to [0, 1]. */
  function batchOf(n: number): Float32Array {
    const out = new Float32Array(n * 784);
    for (let i = 0; i < n; i++) out.set(image(i % 8), i * 784);
    return out;
  }

  it('answers a batch run in many small steps exactly as one prediction of the whole batch', async () => {
    const stepped = new ModelServer(store, { maxStepRows: 7 });
    try {
      await stepped.load('mnist', 3);
      const n = 300;
      const inputs = batchOf(n);
      const answer = await stepped.predict('mnist', undefined, inputs, n);
      const whole = tf.tidy(() => {
        const y = stepped.get('mnist')!.model.predict(tf.tensor(inputs, [n, 784])) as tf.Tensor;
        return { p: y.dataSync() as Float32Array, c: y.argMax(-1).dataSync() as Int32Array };
      });
      expect(answer.probabilities).toEqual(Float32Array.from(whole.p));
      expect(answer.classes).toEqual(Int32Array.from(whole.c));
    } finally {
      stepped.dispose();
    }
  });

  it('gives the event loop a turn between the steps of a batch', async () => {
    const stepped = new ModelServer(store, { maxStepRows: 10 });
    try {
      await stepped.load('mnist', 3);
      let done = false;
      let turns = 0;
      const spin = (): void => {
        turns++;
        if (!done) setImmediate(spin);
      };
      setImmediate(spin);
      const before = tf.memory().numTensors;
      await stepped.predict('mnist', undefined, batchOf(100), 100);
      done = true;
      // 100 examples at most 10 a step: at least 10 steps, each in a turn of its own.
      expect(turns).toBeGreaterThanOrEqual(10);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      stepped.dispose();
    }
  });

  it('parses concurrent requests in turns and answers each with its own batch', async () => {
    const sizes = [1, 40, 3, 25];
    const answers = await Promise.all(
      sizes.map((n) =>
        request('/v2/models/mnist/infer', {
          id: `n${n}`,
          ...inferBody(
            Array.from({ length: n }, (_, i) => image(i % 8)),
            [n, 784],
          ),
        }),
      ),
    );
    answers.forEach((res, i) => {
      expect(res.status).toBe(200);
      expect(res.json.id).toBe(`n${sizes[i]}`);
      expect((res.json.outputs as Output[])[1].shape).toEqual([sizes[i], 1]);
    });
  });
});

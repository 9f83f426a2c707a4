// The binary tensor data extension of the Open Inference Protocol (KServe/Triton): a JSON header
// of `Inference-Header-Content-Length` bytes, then raw little-endian tensors, in both directions.
// Requests are built byte by byte and sent with node:http (and with curl where it is installed)
// to a real inference server on 127.0.0.1 with a real model from the local store.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MnistSlice, readMnist } from '../../edge-agent/data/index.ts';
import { ModelServer, startInferenceServer } from '../../edge-agent/inference/index.ts';
import { type LocalModelStore, openLocalModelStore } from '../../edge-agent/store/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { buildModel, type ModelArchitecture, readWeights } from '../../shared/models/index.ts';
import { HAVE_CURL } from '../helpers/http-body.ts';

const architecture: ModelArchitecture = {
  kind: 'mlp',
  inputShape: [784],
  layers: [32, 10],
  activation: 'relu',
};

let dir: string;
let store: LocalModelStore;
let server: ModelServer;
let http: { url: string; close(): Promise<void> };
let mnist: MnistSlice;

/** `n` MNIST test images scaled to [0, 1], row-major. */
function pixels(n: number): Float32Array {
  return Float32Array.from(mnist.images.subarray(0, n * 784), (p) => p / 255);
}

/** A binary request body: the JSON header, then `tail`; returns the body and the header length. */
function framed(header: unknown, tail: Uint8Array): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, tail]), headerLength: json.byteLength };
}

function post(
  path: string,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  const target = new URL(`${http.url}${path}`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(body.length),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Header {
  id?: string;
  outputs: { name: string; parameters?: Record<string, unknown>; data?: number[] }[];
}

/** Splits a binary response into its JSON header and the bytes after it. */
function unframe(res: { headers: IncomingHttpHeaders; body: Buffer }) {
  const n = Number(res.headers['inference-header-content-length']);
  return {
    header: JSON.parse(res.body.subarray(0, n).toString()) as Header,
    tail: res.body.subarray(n),
  };
}

function expected(x: Float32Array) {
  return tf.tidy(() => {
    const y = server.get('mnist')!.model.predict(tf.tensor(x, [x.length / 784, 784])) as tf.Tensor;
    return { p: Float32Array.from(y.dataSync()), c: Int32Array.from(y.argMax(-1).dataSync()) };
  });
}

const infer = '/v2/models/mnist/infer';

beforeAll(async () => {
  await initCompute();
  dir = await mkdtemp(join(tmpdir(), 'loom-binary-'));
  store = await openLocalModelStore(dir);
  const model = await buildModel(architecture);
  await store.put({ name: 'mnist', version: 1, architecture, weights: readWeights(model) });
  model.dispose();
  mnist = await readMnist('test', { limit: 8 });
  server = new ModelServer(store);
  await server.load('mnist', 1);
  http = await startInferenceServer(server, { port: 0, log: createLogger('silent') });
});

afterAll(async () => {
  await http?.close();
  server?.dispose();
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the binary tensor data extension', () => {
  it('takes raw FP32 input bytes and answers every output as raw bytes after a JSON header', async () => {
    const x = pixels(8);
    const { body, headerLength } = framed(
      {
        id: 'bin',
        inputs: [
          {
            name: 'input',
            shape: [8, 784],
            datatype: 'FP32',
            parameters: { binary_data_size: x.byteLength },
          },
        ],
        parameters: { binary_data_output: true },
      },
      new Uint8Array(x.buffer),
    );
    const res = await post(infer, body, { 'inference-header-content-length': String(headerLength) });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    const { header, tail } = unframe(res);
    expect(header.id).toBe('bin');
    expect(header.outputs).toEqual([
      { name: 'probabilities', shape: [8, 10], datatype: 'FP32', parameters: { binary_data_size: 320 } },
      { name: 'class', shape: [8, 1], datatype: 'INT64', parameters: { binary_data_size: 64 } },
    ]);
    expect(tail.byteLength).toBe(384);
    const want = expected(x);
    const probs = Array.from({ length: 80 }, (_, i) => tail.readFloatLE(i * 4));
    const classes = Array.from({ length: 8 }, (_, i) => Number(tail.readBigInt64LE(320 + i * 8)));
    for (const [i, p] of probs.entries()) expect(p).toBeCloseTo(want.p[i], 5);
    expect(classes).toEqual(Array.from(want.c));
  });

  it('mixes binary and JSON: UINT8 input bytes in, one output binary and one as JSON', async () => {
    const raw = mnist.images.subarray(0, 2 * 784);
    const { body, headerLength } = framed(
      {
        inputs: [
          {
            name: 'input',
            shape: [2, 784],
            datatype: 'UINT8',
            parameters: { binary_data_size: raw.byteLength },
          },
        ],
        outputs: [{ name: 'class', parameters: { binary_data: true } }, { name: 'probabilities' }],
      },
      raw,
    );
    const res = await post(infer, body, { 'inference-header-content-length': String(headerLength) });
    expect(res.status).toBe(200);
    const { header, tail } = unframe(res);
    expect(header.outputs[0]).toEqual({
      name: 'class',
      shape: [2, 1],
      datatype: 'INT64',
      parameters: { binary_data_size: 16 },
    });
    expect(header.outputs[1].data).toHaveLength(20);
    const want = expected(Float32Array.from(raw));
    expect([Number(tail.readBigInt64LE(0)), Number(tail.readBigInt64LE(8))]).toEqual(Array.from(want.c));
  });

  it('answers a JSON request with binary outputs when it asks for them', async () => {
    const x = pixels(1);
    const res = await post(
      infer,
      Buffer.from(
        JSON.stringify({
          inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: Array.from(x) }],
          parameters: { binary_data_output: true },
          outputs: [{ name: 'probabilities' }],
        }),
      ),
      { 'content-type': 'application/json' },
    );
    expect(res.status).toBe(200);
    const { header, tail } = unframe(res);
    expect(header.outputs[0].parameters).toEqual({ binary_data_size: 40 });
    expect(tail.byteLength).toBe(40);
  });

  it('refuses malformed binary requests with 400 and a message naming the fault', async () => {
    const x = pixels(1);
    const bytes = new Uint8Array(x.buffer);
    const input = (extra: Record<string, unknown>) => ({
      name: 'input',
      shape: [1, 784],
      datatype: 'FP32',
      ...extra,
    });
    const cases: { header: unknown; tail: Uint8Array; length?: string; message: RegExp }[] = [
      {
        header: { inputs: [input({ parameters: { binary_data_size: 3136 } })] },
        tail: bytes,
        length: '99999',
        message: /Inference-Header-Content-Length/,
      },
      {
        header: { inputs: [input({ parameters: { binary_data_size: 3136 } })] },
        tail: bytes,
        length: 'ten',
        message: /Inference-Header-Content-Length/,
      },
      {
        header: { inputs: [input({ parameters: { binary_data_size: 3000 } })] },
        tail: bytes,
        message: /3000 bytes.*needs 3136/,
      },
      {
        header: { inputs: [input({ parameters: { binary_data_size: 3136 } })] },
        tail: bytes.subarray(0, 3000),
        message: /holds 3000 bytes/,
      },
      {
        header: { inputs: [input({ parameters: { binary_data_size: 3136 } })] },
        tail: Buffer.concat([bytes, Buffer.alloc(4)]),
        message: /holds 3140 bytes/,
      },
      {
        header: { inputs: [input({ parameters: { binary_data_size: -1 } })] },
        tail: bytes,
        message: /non-negative integer/,
      },
      {
        header: { inputs: [input({ data: Array.from(x), parameters: { binary_data_size: 3136 } })] },
        tail: bytes,
        message: /both/,
      },
      { header: { inputs: [input({ data: Array.from(x) })] }, tail: bytes, message: /no input declares/ },
      { header: { inputs: [input({ parameters: 'binary' })] }, tail: bytes, message: /parameters/ },
      {
        header: {
          inputs: [input({ parameters: { binary_data_size: 3136 } })],
          parameters: { binary_data_output: 'yes' },
        },
        tail: bytes,
        message: /boolean/,
      },
      {
        header: { inputs: [input({ parameters: { binary_data_size: 3136 } })] },
        tail: new Uint8Array(new Float32Array(784).fill(Number.NaN).buffer),
        message: /not a valid FP32/,
      },
    ];
    for (const c of cases) {
      const { body, headerLength } = framed(c.header, c.tail);
      const res = await post(infer, body, {
        'inference-header-content-length': c.length ?? String(headerLength),
      });
      expect(res.status, JSON.stringify(c.header)).toBe(400);
      const err = JSON.parse(res.body.toString()) as { code: string; error: string };
      expect(err.code).toBe('LOOM_ERR_INFERENCE_INPUT');
      expect(err.error).toMatch(c.message);
    }
    // A header cut in the middle of its JSON is bad JSON.
    const { body } = framed({ inputs: [input({ parameters: { binary_data_size: 3136 } })] }, bytes);
    const res = await post(infer, body, { 'inference-header-content-length': '20' });
    expect(res.status).toBe(400);
    // binary_data_size without a binary body.
    const plain = await post(
      infer,
      Buffer.from(JSON.stringify({ inputs: [input({ parameters: { binary_data_size: 3136 } })] })),
      {},
    );
    expect(plain.status).toBe(400);
    expect(JSON.parse(plain.body.toString()).error).toMatch(/Inference-Header-Content-Length/);
    // The server still answers.
    expect(
      (
        await post(
          infer,
          framed({ inputs: [input({ parameters: { binary_data_size: 3136 } })] }, bytes).body,
          {
            'inference-header-content-length': String(
              framed({ inputs: [input({ parameters: { binary_data_size: 3136 } })] }, bytes).headerLength,
            ),
          },
        )
      ).status,
    ).toBe(200);
  });

  it.skipIf(!HAVE_CURL)('works with curl --data-binary', async () => {
    const x = pixels(2);
    const { body, headerLength } = framed(
      {
        inputs: [
          {
            name: 'input',
            shape: [2, 784],
            datatype: 'FP32',
            parameters: { binary_data_size: x.byteLength },
          },
        ],
        outputs: [{ name: 'class', parameters: { binary_data: true } }],
      },
      new Uint8Array(x.buffer),
    );
    const file = join(dir, 'request.bin');
    const out = join(dir, 'response.bin');
    await writeFile(file, body);
    // Asynchronously: the server answering curl runs in this very process.
    const r = await promisify(execFile)('curl', [
      '-sS',
      '-D',
      '-',
      '-o',
      out,
      '-H',
      'Content-Type: application/octet-stream',
      '-H',
      `Inference-Header-Content-Length: ${headerLength}`,
      '--data-binary',
      `@${file}`,
      `${http.url}${infer}`,
    ]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200/);
    const length = Number(/inference-header-content-length: (\d+)/i.exec(r.stdout)![1]);
    const bytes = await readFile(out);
    const header = JSON.parse(bytes.subarray(0, length).toString());
    expect(header.outputs[0].parameters.binary_data_size).toBe(16);
    const want = expected(x);
    expect([Number(bytes.readBigInt64LE(length)), Number(bytes.readBigInt64LE(length + 8))]).toEqual(
      Array.from(want.c),
    );
  });
});

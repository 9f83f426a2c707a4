// The gRPC form of the Open Inference Protocol (inference.GRPCInferenceService) with a real
// @grpc/grpc-js client built from the shipped .proto: a real model from the local store, real
// MNIST images, plaintext and TLS on 127.0.0.1, API keys, and the errors as gRPC status codes.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueServerCert } from '../../certs/index.ts';
import { ApiKeyRing, createApiKey } from '../../edge-agent/api-keys/index.ts';
import { type MnistSlice, readMnist } from '../../edge-agent/data/index.ts';
import {
  GRPC_LOADER_OPTIONS,
  GRPC_PROTO_PATH,
  ModelServer,
  type RunningGrpcInferenceServer,
  startGrpcInferenceServer,
} from '../../edge-agent/inference/index.ts';
import { type LocalModelStore, openLocalModelStore } from '../../edge-agent/store/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { buildModel, type ModelArchitecture, readWeights } from '../../shared/models/index.ts';
import { waitUntil } from '../helpers/cluster.ts';

const architecture: ModelArchitecture = {
  kind: 'mlp',
  inputShape: [784],
  layers: [32, 10],
  activation: 'relu',
};
const silent = createLogger('silent');

type Client = grpc.Client &
  Record<
    string,
    (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void
  >;

const Service = (
  grpc.loadPackageDefinition(protoLoader.loadSync(GRPC_PROTO_PATH, GRPC_LOADER_OPTIONS)) as unknown as {
    inference: { GRPCInferenceService: new (address: string, creds: grpc.ChannelCredentials) => Client };
  }
).inference.GRPCInferenceService;

/** One unary call; resolves with the response, or rejects with the ServiceError. */
function call<T = Record<string, unknown>>(
  client: Client,
  method: string,
  req: unknown,
  md = new grpc.Metadata(),
): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method](req, md, (err, res) => (err ? reject(err) : resolve(res as T))),
  );
}

async function failure(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('the call succeeded');
}

let dir: string;
let store: LocalModelStore;
let models: ModelServer;
let mnist: MnistSlice;

function pixels(n: number): Float32Array {
  return Float32Array.from(mnist.images.subarray(0, n * 784), (p) => p / 255);
}

function expected(x: Float32Array) {
  return tf.tidy(() => {
    const y = models.get('mnist')!.model.predict(tf.tensor(x, [x.length / 784, 784])) as tf.Tensor;
    return { p: Float32Array.from(y.dataSync()), c: Array.from(y.argMax(-1).dataSync()) };
  });
}

beforeAll(async () => {
  await initCompute();
  dir = await mkdtemp(join(tmpdir(), 'loom-grpc-'));
  store = await openLocalModelStore(dir);
  for (const version of [1, 2]) {
    const model = await buildModel(architecture);
    await store.put({ name: 'mnist', version, architecture, weights: readWeights(model) });
    model.dispose();
  }
  mnist = await readMnist('test', { limit: 4 });
  models = new ModelServer(store);
  await models.load('mnist', 1);
});

afterAll(async () => {
  models?.dispose();
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the gRPC inference API', () => {
  let server: RunningGrpcInferenceServer;
  let client: Client;

  beforeAll(async () => {
    server = await startGrpcInferenceServer(models, { port: 0, log: silent });
    client = new Service(server.address, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  it('answers liveness, readiness and metadata', async () => {
    expect(await call(client, 'ServerLive', {})).toEqual({ live: true });
    expect(await call(client, 'ServerReady', {})).toEqual({ ready: true });
    expect(await call(client, 'ModelReady', { name: 'mnist' })).toEqual({ ready: true });
    expect(await call(client, 'ModelReady', { name: 'mnist', version: '1' })).toEqual({ ready: true });
    expect(await call(client, 'ServerMetadata', {})).toMatchObject({
      name: 'loom-edge',
      extensions: ['binary_tensor_data'],
    });
    expect(await call(client, 'ModelMetadata', { name: 'mnist' })).toEqual({
      name: 'mnist',
      versions: ['1'],
      platform: 'tensorflowjs',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 784] }],
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 10] },
        { name: 'class', datatype: 'INT64', shape: [-1, 1] },
      ],
    });
  });

  it('infers from typed contents and from raw_input_contents, answering raw_output_contents', async () => {
    const x = pixels(3);
    const want = expected(x);
    const typed = await call<{
      id: string;
      model_version: string;
      outputs: { name: string; shape: number[] }[];
      raw_output_contents: Buffer[];
    }>(client, 'ModelInfer', {
      model_name: 'mnist',
      id: 'typed',
      inputs: [
        { name: 'input', datatype: 'FP32', shape: [3, 784], contents: { fp32_contents: Array.from(x) } },
      ],
    });
    const raw = await call<typeof typed>(client, 'ModelInfer', {
      model_name: 'mnist',
      model_version: '1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 784] }],
      outputs: [{ name: 'class' }],
      raw_input_contents: [Buffer.from(x.buffer)],
    });
    expect(typed.id).toBe('typed');
    expect(typed.model_version).toBe('1');
    expect(typed.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['probabilities', [3, 10]],
      ['class', [3, 1]],
    ]);
    const probs = typed.raw_output_contents[0];
    for (let i = 0; i < 30; i++) expect(probs.readFloatLE(i * 4)).toBeCloseTo(want.p[i], 5);
    const classesOf = (b: Buffer) => [0, 1, 2].map((i) => Number(b.readBigInt64LE(i * 8)));
    expect(classesOf(typed.raw_output_contents[1])).toEqual(want.c);
    expect(raw.outputs.map((o) => o.name)).toEqual(['class']);
    expect(classesOf(raw.raw_output_contents[0])).toEqual(want.c);
    // UINT8 pixels as uint_contents, as the REST API takes them.
    const u8 = await call<typeof typed>(client, 'ModelInfer', {
      model_name: 'mnist',
      inputs: [
        {
          name: 'input',
          datatype: 'UINT8',
          shape: [1, 784],
          contents: { uint_contents: Array.from(mnist.images.subarray(0, 784)) },
        },
      ],
    });
    expect(Number(u8.raw_output_contents[1].readBigInt64LE(0))).toBe(want.c[0]);
  });

  it('maps errors to gRPC status codes with the Loom error code in the trailers', async () => {
    const input = { name: 'input', datatype: 'FP32', shape: [1, 784] };
    const cases: [unknown, grpc.status, string, RegExp][] = [
      [{ model_name: 'cifar', inputs: [input] }, grpc.status.NOT_FOUND, 'LOOM_ERR_NOT_FOUND', /cifar/],
      [
        { model_name: 'mnist', model_version: '9', inputs: [input] },
        grpc.status.NOT_FOUND,
        'LOOM_ERR_NOT_FOUND',
        /9/,
      ],
      [
        { model_name: 'mnist', model_version: 'x', inputs: [input] },
        grpc.status.NOT_FOUND,
        'LOOM_ERR_NOT_FOUND',
        /"x"/,
      ],
      [
        { model_name: 'mnist', inputs: [{ ...input, contents: { fp32_contents: [1, 2] } }] },
        grpc.status.INVALID_ARGUMENT,
        'LOOM_ERR_INFERENCE_INPUT',
        /2 values/,
      ],
      [
        { model_name: 'mnist', inputs: [{ ...input, shape: [1, 3] }] },
        grpc.status.INVALID_ARGUMENT,
        'LOOM_ERR_INFERENCE_INPUT',
        /does not fit/,
      ],
      [
        { model_name: 'mnist', inputs: [{ ...input, datatype: 'BYTES' }] },
        grpc.status.INVALID_ARGUMENT,
        'LOOM_ERR_INFERENCE_INPUT',
        /datatype/,
      ],
      [
        { model_name: 'mnist', inputs: [input], raw_input_contents: [Buffer.alloc(100)] },
        grpc.status.INVALID_ARGUMENT,
        'LOOM_ERR_INFERENCE_INPUT',
        /100 bytes/,
      ],
      [
        { model_name: 'mnist', inputs: [input, input], raw_input_contents: [Buffer.alloc(3136)] },
        grpc.status.INVALID_ARGUMENT,
        'LOOM_ERR_INFERENCE_INPUT',
        /one per input/,
      ],
      [
        {
          model_name: 'mnist',
          inputs: [input],
          raw_input_contents: [Buffer.alloc(3136)],
          outputs: [{ name: 'logits' }],
        },
        grpc.status.INVALID_ARGUMENT,
        'LOOM_ERR_INFERENCE_INPUT',
        /logits/,
      ],
    ];
    for (const [req, code, loomCode, message] of cases) {
      const err = await failure(call(client, 'ModelInfer', req));
      expect(err.code, JSON.stringify(req).slice(0, 120)).toBe(code);
      expect(err.details).toMatch(message);
      expect(err.metadata.get('loom-error-code')).toEqual([loomCode]);
    }
    expect((await failure(call(client, 'ModelMetadata', { name: 'cifar' }))).code).toBe(
      grpc.status.NOT_FOUND,
    );
    expect((await failure(call(client, 'ModelReady', { name: 'mnist', version: '2' }))).code).toBe(
      grpc.status.NOT_FOUND,
    );
  });

  it('refuses a message over 16 MiB with RESOURCE_EXHAUSTED and keeps serving', async () => {
    const err = await failure(
      call(client, 'ModelInfer', {
        model_name: 'mnist',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [5400, 784] }],
        raw_input_contents: [Buffer.alloc(5400 * 784 * 4)],
      }),
    );
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(await call(client, 'ServerLive', {})).toEqual({ live: true });
  });

  it('leaks no tensors across calls', async () => {
    const before = tf.memory().numTensors;
    const x = Buffer.from(pixels(1).buffer);
    for (let i = 0; i < 10; i++) {
      await call(client, 'ModelInfer', {
        model_name: 'mnist',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784] }],
        raw_input_contents: [x],
      });
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('the gRPC inference API with API keys and TLS', () => {
  it('asks for the API key on every call but the health probes', async () => {
    const keysDir = await mkdtemp(join(tmpdir(), 'loom-grpc-keys-'));
    const ring = await ApiKeyRing.open(keysDir, { pollMs: 20 });
    const server = await startGrpcInferenceServer(models, {
      port: 0,
      log: silent,
      authorize: (h) => ring.authorize(h),
    });
    const client = new Service(server.address, grpc.credentials.createInsecure());
    try {
      const { key } = await createApiKey(keysDir, { name: 'app' });
      const meta = () => call(client, 'ModelMetadata', { name: 'mnist' });
      await waitUntil(
        async () =>
          (await meta().then(
            () => 0,
            (e: grpc.ServiceError) => e.code,
          )) === grpc.status.UNAUTHENTICATED,
        10_000,
        'the key file to be read',
      );
      expect(await call(client, 'ServerLive', {})).toEqual({ live: true });
      expect(await call(client, 'ServerReady', {})).toEqual({ ready: true });
      const wrong = new grpc.Metadata();
      wrong.set('authorization', 'Bearer nope');
      expect((await failure(call(client, 'ModelReady', { name: 'mnist' }, wrong))).code).toBe(
        grpc.status.UNAUTHENTICATED,
      );
      const right = new grpc.Metadata();
      right.set('authorization', `Bearer ${key}`);
      expect(await call(client, 'ModelReady', { name: 'mnist' }, right)).toEqual({ ready: true });
      const res = await call<{ raw_output_contents: Buffer[] }>(
        client,
        'ModelInfer',
        {
          model_name: 'mnist',
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784] }],
          raw_input_contents: [Buffer.from(pixels(1).buffer)],
        },
        right,
      );
      expect(res.raw_output_contents).toHaveLength(2);
    } finally {
      client.close();
      await server.close();
      ring.close();
      await rm(keysDir, { recursive: true, force: true });
    }
  });

  it('serves over TLS with the certificate of the REST API, and refuses a plaintext client', async () => {
    const tlsDir = await mkdtemp(join(tmpdir(), 'loom-grpc-tls-'));
    const ca = createCA({ commonName: 'Site CA' });
    const pair = issueServerCert(ca, { hosts: ['127.0.0.1', 'localhost'] });
    await writeFile(join(tlsDir, 'cert.pem'), pair.certPem);
    await writeFile(join(tlsDir, 'key.pem'), pair.keyPem);
    const server = await startGrpcInferenceServer(models, {
      port: 0,
      log: silent,
      tls: { certPath: join(tlsDir, 'cert.pem'), keyPath: join(tlsDir, 'key.pem') },
    });
    const secure = new Service(server.address, grpc.credentials.createSsl(Buffer.from(ca.certPem)));
    const plain = new Service(server.address, grpc.credentials.createInsecure());
    try {
      expect(await call(secure, 'ServerLive', {})).toEqual({ live: true });
      const err = await failure(call(plain, 'ServerLive', {}, new grpc.Metadata()));
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      secure.close();
      plain.close();
      await server.close();
      await rm(tlsDir, { recursive: true, force: true });
    }
  });
});

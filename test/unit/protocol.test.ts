// The wire protocol: every message type survives encode → decode unchanged, tensors and blobs are
// carried bit for bit, and untrusted bytes of any shape fail with a LoomError that names the fault
// (LOOM_ERR_PROTOCOL for frames, LOOM_ERR_TENSOR for tensor content), never with anything else.
import msgpack from 'msgpack-lite';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../cli/demo-data.ts';
import { isLoomError, LoomError, type LoomErrorCode } from '../../shared/errors/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import {
  createMessage,
  decodeMessage,
  decodeTensorBytes,
  ENVELOPE_VERSION,
  encodeMessage,
  encodeTensorBytes,
  MESSAGE_TYPES,
  type MessageBodies,
  type MessageOf,
  type MessageType,
} from '../../shared/protocol/index.ts';
import {
  blobToWeights,
  decodeTensors,
  encodeTensors,
  sha256Hex,
  type WeightTensor,
  weightsToBlob,
} from '../../shared/tensors/index.ts';

// --- fixtures ----------------------------------------------------------------------------

/** Same options as the codec, so hand-made frames carry binary the way real ones do. */
const codec = msgpack.createCodec({ binarraybuffer: false, preset: true });

function randomBytes(random: () => number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** float32 values from raw bit patterns (so NaN payloads and -0 are exactly what we wrote). */
function fromBits(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

/** The raw bit patterns of float32 values (comparing these is bit-exact, NaN included). */
function bitsOf(data: Float32Array): number[] {
  const copy = new Uint8Array(data.byteLength);
  copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return Array.from(new Uint32Array(copy.buffer));
}

function tensor(name: string, shape: number[], data: Float32Array): WeightTensor {
  return { name, shape, dtype: 'float32', data };
}

/** Tensors of several shapes, including a scalar, an empty tensor and unusual float values. */
const TENSORS: WeightTensor[] = [
  tensor('scalar', [], new Float32Array([Math.PI])),
  tensor('vector', [3], new Float32Array([1, -2.5, 1e-30])),
  tensor('matrix', [2, 3], new Float32Array([0, 1, 2, 3, 4, 5])),
  tensor('cube', [2, 1, 2], new Float32Array([Infinity, -Infinity, 3.4e38, -1.17e-38])),
  tensor('empty', [0, 4], new Float32Array(0)),
  // Quiet NaN with a payload, signalling NaN, negative NaN with payload, -0 and a subnormal.
  tensor('special', [5], fromBits([0x7fc0_0001, 0x7f80_0001, 0xffc1_2345, 0x8000_0000, 0x0000_0001])),
];

function expectSameTensors(actual: readonly WeightTensor[], expected: readonly WeightTensor[]): void {
  expect(actual.map(({ name, shape, dtype }) => ({ name, shape, dtype }))).toStrictEqual(
    expected.map(({ name, shape, dtype }) => ({ name, shape, dtype })),
  );
  actual.forEach((t, i) => {
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(t.data.length).toBe(expected[i].data.length);
    expect(bitsOf(t.data)).toStrictEqual(bitsOf(expected[i].data));
  });
}

const architecture: ModelArchitecture = {
  kind: 'mlp',
  inputShape: [784],
  layers: [32, 10],
  activation: 'relu',
};
const model = { name: 'mnist', version: 3, architecture };
const weights = encodeTensorBytes(TENSORS);

/** One valid body per message type; the mapped type makes a missing type a compile error. */
const SAMPLES: { [T in MessageType]: MessageBodies[T] } = {
  hello: {
    protocolVersions: [2, 1],
    agentVersion: '0.1.0',
    backend: 'wasm',
    runtime: 'v20.11.1',
    training: 'tfjs-wasm',
    dataFingerprint: 'ab'.repeat(32),
    models: [
      { name: 'mnist', version: 3 },
      { name: 'fashion.v2', version: 1 },
    ],
    dataset: {
      examples: 600,
      featureShape: [28, 28],
      features: 784,
      labels: [
        { value: 0, count: 300 },
        { value: 7, count: 300 },
      ],
      otherLabels: { distinct: 0, examples: 0 },
      nonFiniteValues: 0,
      featureStats: {
        groupSize: 262,
        groups: 3,
        min: [0, 0, 0.5],
        max: [1, 0.75, 1],
        mean: [0.1, 0.25, 0.625],
      },
    },
  },
  welcome: { protocolVersion: 2, agentId: 'agent-7f3a', heartbeatIntervalMs: 10_000, chunkBytes: 8_388_608 },
  train: {
    taskId: 'task-1',
    jobId: 'job-1',
    round: 4,
    model,
    hyper: { epochs: 2, batchSize: 32, learningRate: 0.05 },
    // A plain Uint8Array view into a larger buffer, not a Buffer: the codec must take only the view.
    weights: new Uint8Array([0xff, ...weights, 0xee]).subarray(1, weights.length + 1),
    holdoutFraction: 0.2,
  },
  evaluate: {
    taskId: 'task-2',
    evaluationId: 'eval-1',
    model,
    weights,
    holdoutFraction: 0.1,
  },
  'evaluate-result': {
    taskId: 'task-2',
    evaluationId: 'eval-1',
    numExamples: 5,
    loss: 0.5,
    accuracy: 0.6,
    confusion: [
      [2, 1],
      [1, 1],
    ],
    evalMs: 12.5,
  },
  'train-result': {
    taskId: 'task-1',
    jobId: 'job-1',
    round: 4,
    numExamples: 600,
    metrics: { loss: 0.25, accuracy: 0.9375 },
    update: encodeTensorBytes(TENSORS.slice(0, 3)),
    trainMs: 1234.5,
  },
  'task-error': {
    taskId: 'task-1',
    code: 'LOOM_ERR_DATA',
    message: 'images do not match 784 inputs',
    permanent: true,
  },
  cancel: { taskId: 'task-1' },
  deploy: {
    model,
    weights,
    sha256: sha256Hex(weights),
    signature: Buffer.from([1, 2, 3, 4]),
    signerCertificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  },
  'deploy-ack': { name: 'mnist', version: 3, ok: false, error: 'disk full' },
  activate: {
    model,
    sha256: sha256Hex(weights),
    signature: Buffer.from([1, 2, 3, 4]),
    signerCertificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  },
  renew: { csr: '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n' },
  renewed: {
    certificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    notAfter: '2027-01-01T00:00:00.000Z',
  },
  chunk: {
    payload: 'a'.repeat(64),
    index: 1,
    count: 3,
    size: 10,
    sha256: 'b'.repeat(64),
    bytes: Buffer.from([1, 2, 3, 4]),
  },
  'serving-health': {
    intervalMs: 10_000,
    versions: [
      {
        name: 'mnist',
        version: 3,
        requests: 6,
        errors: 1,
        latency: [1, 2, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      },
    ],
  },
  retirement: {
    name: 'mnist',
    version: 2,
    successor: 3,
    deprecatedAt: '2026-12-01T00:00:00.000Z',
    sunsetAt: '2026-12-08T00:00:00.000Z',
  },
  error: { code: 'LOOM_ERR_PROTOCOL', message: 'the first frame must be hello' },
};

/** The binary field of each type that carries tensors, if any. */
const TENSOR_FIELDS: Partial<Record<MessageType, 'weights' | 'update'>> = {
  train: 'weights',
  'train-result': 'update',
  evaluate: 'weights',
  deploy: 'weights',
};

function sample<T extends MessageType>(type: T, replyTo?: string): MessageOf<T> {
  return createMessage(type, SAMPLES[type], replyTo);
}

/** Deep copy with every Uint8Array/Buffer as a plain Uint8Array, so binary compares by content. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Uint8Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** A hand-made frame: an envelope around `body`, or any value at all with `raw`. */
function frame(type: string, body: unknown, envelope: Record<string, unknown> = {}): Buffer {
  return msgpack.encode({ v: ENVELOPE_VERSION, id: 'msg-1', type, body, ...envelope }, { codec });
}

/** Runs `fn`, which must throw; checks the error is a LoomError with `code` and returns it. */
function failure(fn: () => unknown, code: LoomErrorCode = 'LOOM_ERR_PROTOCOL'): LoomError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a LoomError to be thrown').toBeInstanceOf(LoomError);
  expect((thrown as LoomError).code).toBe(code);
  return thrown as LoomError;
}

/** Decoding untrusted bytes may succeed or fail, but only with a LoomError of the allowed codes. */
function decodeOrLoomError<T>(fn: () => T, codes: readonly LoomErrorCode[]): T | LoomError {
  try {
    return fn();
  } catch (err) {
    if (!isLoomError(err) || !codes.includes(err.code)) {
      const got = isLoomError(err) ? `${err.code}: ${err.message}` : String(err);
      throw new Error(`expected a LoomError ${codes.join('/')}, got ${got}`, { cause: err });
    }
    return err;
  }
}

// --- round trips -------------------------------------------------------------------------

describe('message round trip', () => {
  it('has a sample for every message type', () => {
    expect(Object.keys(SAMPLES).sort()).toStrictEqual([...MESSAGE_TYPES].sort());
  });

  it.each(MESSAGE_TYPES.map((type) => [type]))(
    'decodes an encoded %s message to an equal message',
    (type) => {
      const msg = sample(type, 'request-42');
      const decoded = decodeMessage(encodeMessage(msg));
      expect(plain(decoded)).toStrictEqual(plain(msg));
      expect(decoded.replyTo).toBe('request-42');
    },
  );

  it.each(MESSAGE_TYPES.map((type) => [type]))('leaves replyTo out of a %s message that has none', (type) => {
    const msg = sample(type);
    expect('replyTo' in msg).toBe(false);
    const decoded = decodeMessage(encodeMessage(msg));
    expect('replyTo' in decoded).toBe(false);
    expect(plain(decoded)).toStrictEqual(plain(msg));
  });

  it.each(Object.entries(TENSOR_FIELDS))('carries the tensors of a %s message bit for bit', (type, field) => {
    const msg = sample(type as MessageType);
    const decoded = decodeMessage(encodeMessage(msg));
    const sent = (msg.body as unknown as Record<string, Uint8Array>)[field];
    const received = (decoded.body as unknown as Record<string, Uint8Array>)[field];
    expect(received).toBeInstanceOf(Uint8Array);
    expectSameTensors(decodeTensorBytes(received), decodeTensorBytes(sent));
  });

  it('carries the partial payloads a hello lists', () => {
    const partial = [{ payload: 'c'.repeat(64), count: 10, have: Buffer.from([0b1011, 0b10]) }];
    const msg = createMessage('hello', { ...SAMPLES.hello, partial });
    expect(plain(decodeMessage(encodeMessage(msg)))).toStrictEqual(plain(msg));
    const wrong = createMessage('hello', { ...SAMPLES.hello, partial: [{ ...partial[0], count: 30 }] });
    failure(() => decodeMessage(encodeMessage(wrong)));
  });

  it('gives every created message a fresh id', () => {
    const ids = new Set(Array.from({ length: 100 }, () => createMessage('cancel', { taskId: 't' }).id));
    expect(ids.size).toBe(100);
  });

  it('keeps an optional body field out when it is absent', () => {
    const msg = createMessage('deploy-ack', { name: 'mnist', version: 1, ok: true });
    const decoded = decodeMessage(encodeMessage(msg));
    expect(decoded.body).toStrictEqual({ name: 'mnist', version: 1, ok: true });
  });

  it('drops body fields that the message type does not define', () => {
    const decoded = decodeMessage(frame('cancel', { taskId: 't1', extra: 'ignored' }));
    expect(decoded.body).toStrictEqual({ taskId: 't1' });
  });
});

describe('tensor bytes', () => {
  it('round-trip tensors of every shape bit for bit, NaN payloads included', () => {
    expectSameTensors(decodeTensorBytes(encodeTensorBytes(TENSORS)), TENSORS);
  });

  it('keep a NaN payload through the wire form without any float arithmetic', () => {
    const nan = tensor('nan', [2], fromBits([0x7fa0_beef, 0xff80_0002]));
    const [wire] = encodeTensors([nan]);
    expect(Array.from(new Uint32Array(Uint8Array.from(wire.bytes).buffer))).toStrictEqual([
      0x7fa0_beef, 0xff80_0002,
    ]);
    const [back] = decodeTensorBytes(encodeTensorBytes([nan]));
    expect(bitsOf(back.data)).toStrictEqual([0x7fa0_beef, 0xff80_0002]);
  });

  it('round-trip an empty tensor list', () => {
    expect(decodeTensorBytes(encodeTensorBytes([]))).toStrictEqual([]);
  });

  it('encode only the viewed part of a Float32Array that is a subarray', () => {
    const big = new Float32Array([9, 9, 1, 2, 3, 9]);
    const view = tensor('view', [3], big.subarray(2, 5));
    const [back] = decodeTensorBytes(encodeTensorBytes([view]));
    expect(Array.from(back.data)).toStrictEqual([1, 2, 3]);
  });

  it.each([1, 2, 3, 5])('decode from a buffer that starts at byte offset %i', (offset) => {
    const bytes = encodeTensorBytes(TENSORS);
    const host = new Uint8Array(bytes.length + offset + 3);
    host.set(bytes, offset);
    const decoded = decodeTensorBytes(host.subarray(offset, offset + bytes.length));
    expectSameTensors(decoded, TENSORS);
    for (const t of decoded) expect(t.data.byteOffset % 4).toBe(0);
  });

  it('decode wire tensors whose bytes are not 4-byte aligned by copying them', () => {
    const host = new Uint8Array(4 * 6 + 1);
    const wire = encodeTensors([TENSORS[2]]);
    host.set(wire[0].bytes, 1);
    const [decoded] = decodeTensors([{ ...wire[0], bytes: host.subarray(1) }]);
    expect(decoded.data.byteOffset % 4).toBe(0);
    expectSameTensors([decoded], [TENSORS[2]]);
  });

  it('decode aligned wire tensors without copying', () => {
    const [wire] = encodeTensors([TENSORS[2]]);
    const [decoded] = decodeTensors([wire]);
    expect(decoded.data.buffer).toBe(TENSORS[2].data.buffer);
  });
});

describe('weights blob', () => {
  it('round-trips tensors of every shape bit for bit', () => {
    expectSameTensors(blobToWeights(weightsToBlob(TENSORS)), TENSORS);
  });

  it('round-trips from a buffer at an odd byte offset', () => {
    const blob = weightsToBlob(TENSORS);
    const host = new Uint8Array(blob.length + 3);
    host.set(blob, 3);
    expectSameTensors(blobToWeights(host.subarray(3)), TENSORS);
  });

  it('round-trips an empty tensor list', () => {
    expect(blobToWeights(weightsToBlob([]))).toStrictEqual([]);
  });

  it('refuses a blob without the Loom header, or with too few or too many data bytes', () => {
    const blob = weightsToBlob(TENSORS);
    failure(() => blobToWeights(Buffer.from('not a blob at all')), 'LOOM_ERR_STORE');
    failure(() => blobToWeights(blob.subarray(0, 5)), 'LOOM_ERR_STORE');
    failure(() => blobToWeights(blob.subarray(0, blob.length - 4)), 'LOOM_ERR_STORE');
    failure(() => blobToWeights(Buffer.concat([blob, Buffer.alloc(4)])), 'LOOM_ERR_STORE');
    const badHeader = Buffer.from(blob);
    badHeader[11] = 0x7d; // the JSON header now starts with '}'
    failure(() => blobToWeights(badHeader), 'LOOM_ERR_STORE');
  });
});

// --- malformed input ---------------------------------------------------------------------

describe('malformed frames', () => {
  it('fail with LOOM_ERR_PROTOCOL for 200 seeded random buffers', () => {
    const random = seededRandom(0x10_0e);
    for (let i = 0; i < 200; i++) {
      const bytes = randomBytes(random, Math.floor(random() * 96));
      // A random buffer that happens to be a valid envelope is possible in principle, not here.
      const err = failure(() => decodeMessage(bytes));
      expect(err.message.length).toBeGreaterThan(0);
    }
  });

  it('fail with LOOM_ERR_PROTOCOL for random buffers that start like a map', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 200; i++) {
      const bytes = Buffer.concat([Buffer.from([0x85]), randomBytes(random, 1 + Math.floor(random() * 64))]);
      failure(() => decodeMessage(bytes));
    }
  });

  it('either decode or fail with LOOM_ERR_PROTOCOL when bytes of valid frames are corrupted', () => {
    const random = seededRandom(42);
    const frames = MESSAGE_TYPES.map((type) => encodeMessage(sample(type, 'r-1')));
    let decoded = 0;
    for (let i = 0; i < 1_000; i++) {
      const bytes = Buffer.from(frames[i % frames.length]);
      const flips = 1 + Math.floor(random() * 3);
      for (let k = 0; k < flips; k++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      const result = decodeOrLoomError(() => decodeMessage(bytes), ['LOOM_ERR_PROTOCOL']);
      if (result instanceof LoomError) continue;
      decoded++;
      // Whatever decodes is a well-formed message: its tensor payload fails only as a tensor error.
      const field = TENSOR_FIELDS[result.type];
      if (field) {
        const payload = (result.body as unknown as Record<string, Uint8Array>)[field];
        decodeOrLoomError(() => decodeTensorBytes(payload), ['LOOM_ERR_TENSOR']);
      }
    }
    // Flipping a byte inside a string or a tensor usually leaves a valid frame: both paths ran.
    expect(decoded).toBeGreaterThan(0);
    expect(decoded).toBeLessThan(1_000);
  });

  it.each(MESSAGE_TYPES.map((type) => [type]))(
    'fail with LOOM_ERR_PROTOCOL for every truncation of a %s frame',
    (type) => {
      const bytes = encodeMessage(sample(type, 'r-1'));
      for (let n = 0; n < bytes.length; n++) failure(() => decodeMessage(bytes.subarray(0, n)));
    },
  );

  it.each([
    ['a number', 42],
    ['a string', 'hello'],
    ['nil', null],
    ['a boolean', true],
    ['an array', [1, 'hello', {}]],
    ['binary', Buffer.from('hello')],
  ])('fail with LOOM_ERR_PROTOCOL when the frame is %s, not an envelope', (_what, value) => {
    const err = failure(() => decodeMessage(msgpack.encode(value, { codec })));
    expect(err.message).toMatch(/must be an object/);
  });

  it.each([
    ['version 2', { v: 2 }],
    ['version 0', { v: 0 }],
    ['a string version', { v: '1' }],
    ['no version', { v: undefined }],
  ])('fail with LOOM_ERR_PROTOCOL for an envelope with %s', (_what, envelope) => {
    const err = failure(() => decodeMessage(frame('cancel', { taskId: 't1' }, envelope)));
    expect(err.message).toMatch(/envelope version/);
  });

  it.each(['launch', 'HELLO', '', 'constructor', '__proto__', 'toString'])(
    'fail with LOOM_ERR_PROTOCOL for the unknown message type "%s"',
    (type) => {
      failure(() => decodeMessage(frame(type, { taskId: 't1' })));
    },
  );

  it('fail with LOOM_ERR_PROTOCOL naming the type when it is not a string', () => {
    const err = failure(() => decodeMessage(frame('cancel', { taskId: 't1' }, { type: 7 })));
    expect(err.details).toStrictEqual({ field: 'type' });
  });

  it.each([
    ['id', { id: '' }],
    ['id', { id: 'has spaces' }],
    ['id', { id: 12 }],
    ['id', { id: 'x'.repeat(129) }],
    ['replyTo', { replyTo: 'not/valid' }],
    ['replyTo', { replyTo: 5 }],
    ['body', { body: 'text' }],
    ['body', { body: [1, 2] }],
    ['body', { body: Buffer.from('x') }],
  ])('fail with LOOM_ERR_PROTOCOL naming %s when it is ill-typed', (field, envelope) => {
    const err = failure(() => decodeMessage(frame('cancel', { taskId: 't1' }, envelope)));
    expect(err.message).toContain(field);
    expect(err.details).toStrictEqual({ field });
  });

  /** Every top-level body field of every type, with a value of the wrong type for it. */
  const FIELD_CASES = MESSAGE_TYPES.flatMap((type) =>
    Object.entries(SAMPLES[type]).map(([field, value]) => [
      type,
      field,
      typeof value === 'string' ? 42 : 'x',
    ]),
  ) as [MessageType, string, unknown][];

  const OPTIONAL_FIELDS = new Set([
    'deploy-ack.error',
    'task-error.permanent',
    'train.holdoutFraction',
    'hello.runtime',
    'hello.training',
    'hello.dataFingerprint',
  ]);

  it.each(FIELD_CASES.filter(([type, field]) => !OPTIONAL_FIELDS.has(`${type}.${field}`)))(
    'fail with LOOM_ERR_PROTOCOL naming the field when a %s body lacks %s',
    (type, field) => {
      const body: Record<string, unknown> = { ...SAMPLES[type] };
      delete body[field];
      const err = failure(() => decodeMessage(frame(type, body)));
      expect(err.message).toContain(`body.${field}`);
      expect(err.details).toStrictEqual({ field: `body.${field}` });
    },
  );

  it.each(FIELD_CASES)(
    'fail with LOOM_ERR_PROTOCOL naming the field when a %s body has an ill-typed %s',
    (type, field, bad) => {
      const err = failure(() => decodeMessage(frame(type, { ...SAMPLES[type], [field]: bad })));
      expect(err.message).toContain(`body.${field}`);
      expect(err.details).toStrictEqual({ field: `body.${field}` });
    },
  );

  it.each([
    ['hello', 'body.protocolVersions', { protocolVersions: [1.5] }],
    ['hello', 'body.protocolVersions', { protocolVersions: Array.from({ length: 17 }, (_, i) => i + 1) }],
    [
      'hello',
      'body.models.1.name',
      {
        models: [
          { name: 'a', version: 1 },
          { name: '../etc', version: 1 },
        ],
      },
    ],
    ['hello', 'body.models.0.version', { models: [{ name: 'a', version: 0 }] }],
    ['hello', 'body.models.0', { models: ['a'] }],
    ['hello', 'body.dataFingerprint', { dataFingerprint: 'AB'.repeat(32) }],
    ['hello', 'body.dataFingerprint', { dataFingerprint: 'ab'.repeat(33) }],
    ['hello', 'body.runtime', { runtime: 'v20\n<script>' }],
    ['hello', 'body.training', { training: 'x'.repeat(65) }],
    ['welcome', 'body.heartbeatIntervalMs', { heartbeatIntervalMs: 1 }],
    ['welcome', 'body.agentId', { agentId: 'no spaces allowed' }],
    ['train', 'body.round', { round: 0 }],
    ['train', 'body.round', { round: 1.5 }],
    ['train', 'body.model.version', { model: { ...model, version: '3' } }],
    ['train', 'body.model.name', { model: { ...model, name: '' } }],
    ['train', 'body.hyper.learningRate', { hyper: { epochs: 1, batchSize: 1, learningRate: 0 } }],
    ['train', 'body.hyper.epochs', { hyper: { epochs: 1001, batchSize: 1, learningRate: 0.1 } }],
    ['train', 'body.hyper', { hyper: null }],
    ['train', 'body.model.architecture.kind', { model: { ...model, architecture: { kind: 'rnn' } } }],
    [
      'train',
      'body.model.architecture.layers',
      { model: { ...model, architecture: { ...architecture, layers: [] } } },
    ],
    ['train', 'body.model.architecture', { model: { ...model, architecture: 'mlp' } }],
    ['train', 'body.holdoutFraction', { holdoutFraction: 0.75 }],
    ['train', 'body.holdoutFraction', { holdoutFraction: -0.1 }],
    ['evaluate', 'body.holdoutFraction', { holdoutFraction: undefined }],
    ['evaluate', 'body.evaluationId', { evaluationId: 'has space' }],
    ['evaluate-result', 'body.loss', { loss: Number.NaN }],
    ['evaluate-result', 'body.loss', { loss: -1 }],
    ['evaluate-result', 'body.accuracy', { accuracy: 1.5 }],
    ['evaluate-result', 'body.numExamples', { numExamples: 2.5 }],
    ['evaluate-result', 'body.confusion', { confusion: 'none' }],
    ['evaluate-result', 'body.confusion.1', { confusion: [[1], [-1]] }],
    ['evaluate-result', 'body.confusion.0', { confusion: [[0.5]] }],
    ['evaluate-result', 'body.confusion.0', { confusion: [7] }],
    ['train-result', 'body.metrics.loss', { metrics: { loss: 'low' } }],
    ['train-result', 'body.numExamples', { numExamples: -1 }],
    ['train-result', 'body.trainMs', { trainMs: Number.NaN }],
    ['train-result', 'body.trainMs', { trainMs: Number.POSITIVE_INFINITY }],
    ['deploy', 'body.sha256', { sha256: 'ABC' }],
    ['deploy', 'body.signature', { signature: 'not-bytes' }],
    ['deploy', 'body.signerCertificate', { signerCertificate: 42 }],
    ['deploy', 'body.model.architecture.kind', { model: { ...model, architecture: {} } }],
    ['deploy-ack', 'body.error', { error: '' }],
    ['task-error', 'body.message', { message: 'x'.repeat(4097) }],
  ] as [MessageType, string, Record<string, unknown>][])(
    'fail with LOOM_ERR_PROTOCOL for a %s body with a bad %s',
    (type, field, patch) => {
      const err = failure(() => decodeMessage(frame(type, { ...SAMPLES[type], ...patch })));
      expect(err.message).toContain(field);
      expect(err.details).toStrictEqual({ field });
    },
  );
});

describe('malformed tensor bytes', () => {
  /** Raw tensor-list bytes from hand-made wire entries. */
  function tensorBytes(entries: unknown): Buffer {
    return msgpack.encode(entries, { codec });
  }
  const fourFloats = Buffer.alloc(16);

  it('either decode or fail with LOOM_ERR_TENSOR for 200 seeded random buffers', () => {
    const random = seededRandom(0x7e_a5);
    for (let i = 0; i < 200; i++) {
      const result = decodeOrLoomError(
        () => decodeTensorBytes(randomBytes(random, Math.floor(random() * 96))),
        ['LOOM_ERR_TENSOR'],
      );
      if (!(result instanceof LoomError)) expect(Array.isArray(result)).toBe(true);
    }
  });

  it('fail with LOOM_ERR_TENSOR for every truncation of a tensor list', () => {
    const bytes = encodeTensorBytes(TENSORS);
    for (let n = 0; n < bytes.length; n++)
      failure(() => decodeTensorBytes(bytes.subarray(0, n)), 'LOOM_ERR_TENSOR');
  });

  it.each([
    ['more bytes than the shape needs', [2, 1], Buffer.alloc(12)],
    ['fewer bytes than the shape needs', [2, 3], fourFloats],
    ['bytes that are not a whole number of floats', [1], Buffer.alloc(3)],
    ['a scalar shape with no bytes', [], Buffer.alloc(0)],
  ])('fail with LOOM_ERR_TENSOR for a tensor with %s', (_what, shape, bytes) => {
    const err = failure(
      () => decodeTensorBytes(tensorBytes([{ name: 'w', shape, dtype: 'float32', bytes }])),
      'LOOM_ERR_TENSOR',
    );
    expect(err.message).toContain('"w"');
    expect(err.message).toMatch(/bytes/);
  });

  it.each(['float16', 'float64', 'int32', 'uint8', 'bool', 'FLOAT32', undefined, 4])(
    'fail with LOOM_ERR_TENSOR for the dtype %s',
    (dtype) => {
      const err = failure(
        () => decodeTensorBytes(tensorBytes([{ name: 'w', shape: [4], dtype, bytes: fourFloats }])),
        'LOOM_ERR_TENSOR',
      );
      expect(err.message).toMatch(/dtype/);
    },
  );

  it.each([
    ['a negative dim', [-1, -4]],
    ['a negative dim beside a zero', [0, -4]],
    ['a fractional dim', [2.5]],
    ['a huge dim', [2 ** 40, 2 ** 40]],
    ['dims whose product overflows', [2 ** 52, 2 ** 52, 2 ** 52]],
    ['an unsafe integer dim', [2 ** 53]],
    ['an infinite dim', [Number.POSITIVE_INFINITY]],
    ['a string dim', ['4']],
    ['nine dims', [1, 1, 1, 1, 1, 1, 1, 1, 4]],
    ['no shape array', 4],
  ])('fail with LOOM_ERR_TENSOR for a shape with %s', (_what, shape) => {
    const err = failure(
      () => decodeTensorBytes(tensorBytes([{ name: 'w', shape, dtype: 'float32', bytes: fourFloats }])),
      'LOOM_ERR_TENSOR',
    );
    expect(err.message).toContain('"w"');
  });

  it.each([
    ['a list that is not an array', { name: 'w' }],
    ['an entry that is not an object', [42]],
    ['an entry that is nil', [null]],
    ['an entry without a name', [{ shape: [4], dtype: 'float32', bytes: fourFloats }]],
    ['an entry with an empty name', [{ name: '', shape: [4], dtype: 'float32', bytes: fourFloats }]],
    ['an entry whose bytes are a string', [{ name: 'w', shape: [1], dtype: 'float32', bytes: 'abcd' }]],
    ['an entry whose bytes are numbers', [{ name: 'w', shape: [1], dtype: 'float32', bytes: [0, 0, 0, 0] }]],
  ])('fail with LOOM_ERR_TENSOR for %s', (_what, entries) => {
    failure(() => decodeTensorBytes(tensorBytes(entries)), 'LOOM_ERR_TENSOR');
  });

  it('fail with LOOM_ERR_TENSOR when a valid frame carries bad tensor bytes', () => {
    const bad = tensorBytes([{ name: 'w', shape: [3], dtype: 'float32', bytes: fourFloats }]);
    const msg = decodeMessage(encodeMessage(createMessage('train', { ...SAMPLES.train, weights: bad })));
    expect(msg.type).toBe('train');
    if (msg.type !== 'train') return;
    failure(() => decodeTensorBytes(msg.body.weights), 'LOOM_ERR_TENSOR');
  });
});

describe('weights.bin data', () => {
  it('splits back into the tensors it was concatenated from, and refuses a wrong byte count', async () => {
    const { concatWeightData, splitWeightData } = await import('../../shared/tensors/index.ts');
    const weights = [
      { name: 'k', shape: [2, 3], dtype: 'float32' as const, data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      { name: 'b', shape: [3], dtype: 'float32' as const, data: new Float32Array([-1, 0.5, Number.NaN]) },
    ];
    const bin = concatWeightData(weights);
    const back = splitWeightData(weights, bin.subarray(0));
    expect(back.map((t) => [t.name, t.shape, [...t.data]])).toEqual(
      weights.map((t) => [t.name, t.shape, [...t.data]]),
    );
    // An unaligned view is copied, not misread.
    const shifted = Buffer.concat([Buffer.from([0]), bin]).subarray(1);
    expect([...splitWeightData(weights, shifted)[0].data]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => splitWeightData(weights, bin.subarray(4))).toThrow(
      expect.objectContaining({ code: 'LOOM_ERR_TENSOR' }),
    );
  });
});

describe('a serving-health report', () => {
  const entry = SAMPLES['serving-health'].versions[0];
  const report = (changes: Record<string, unknown>) =>
    frame('serving-health', { intervalMs: 1000, versions: [{ ...entry, ...changes }] });

  it.each([
    ['more errors than requests', { errors: 7 }],
    ['a histogram that does not add up to the requests', { requests: 5, errors: 0 }],
    ['a histogram of the wrong length', { latency: [6] }],
    ['a negative count', { requests: -1 }],
    ['a count that is not finite', { requests: Number.POSITIVE_INFINITY }],
    ['a count past the bound', { requests: 2e9, latency: [2e9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }],
    ['a fractional count', { errors: 0.5 }],
  ])('is refused with LOOM_ERR_PROTOCOL for %s', (_what, changes) => {
    failure(() => decodeMessage(report(changes)));
  });

  it('is refused when it names too many versions', () => {
    const versions = Array.from({ length: 257 }, () => entry);
    failure(() => decodeMessage(frame('serving-health', { intervalMs: 1000, versions })));
  });
});

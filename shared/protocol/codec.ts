// Frame codec: one msgpack envelope {v, id, type, replyTo?, body} per WebSocket frame, and the
// encoding of tensor lists inside bodies. Decoding validates everything it returns.
import { randomUUID } from 'node:crypto';
import msgpack from 'msgpack-lite';
import { isLoomError, LoomError, type LoomErrorCode } from '../errors/index.ts';
import { type ModelArchitecture, parseArchitecture } from '../models/index.ts';
import { decodeTensors, encodeTensors, type WeightTensor } from '../tensors/index.ts';
import { FieldReader } from './fields.ts';
import {
  type DatasetSummary,
  type FeatureStats,
  HEALTH_LATENCY_BUCKETS_MS,
  HOLDOUT_DEFAULTS,
  MAX_EVALUATION_CLASSES,
  MAX_HEALTH_COUNT,
  MAX_HEALTH_VERSIONS,
  MESSAGE_TYPES,
  type Message,
  type MessageBodies,
  type MessageOf,
  type MessageType,
  type ModelRef,
  SUMMARY_LIMITS,
} from './messages.ts';
import { chunkPayload, PAYLOAD_FIELDS, type PayloadRef } from './payloads.ts';

/** Largest example count an update may claim (its weight in FedAvg). */
export const MAX_EXAMPLES_PER_UPDATE = 1_000_000_000;

/** Version of the envelope layout (distinct from the negotiated protocol version). */
export const ENVELOPE_VERSION = 1;

const codec = msgpack.createCodec({ binarraybuffer: false, preset: true });

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Builds a message with a fresh id. */
export function createMessage<T extends MessageType>(
  type: T,
  body: MessageBodies[T],
  replyTo?: string,
): MessageOf<T> {
  return { type, id: randomUUID(), body, ...(replyTo ? { replyTo } : {}) } as MessageOf<T>;
}

/**
 * msgpack-lite builds a map by assignment, so a map key "__proto__" sets the prototype of the
 * object it is in: a map could then pass for binary (`instanceof Uint8Array`) and throw a
 * TypeError on first use, or carry inherited fields past the validators. Decoded data must be
 * plain: every object's prototype is the standard one of its class (object, array, Buffer or a
 * msgpack extension type), never another decoded value or null.
 */
function decodeMsgpack(bytes: Uint8Array, code: LoomErrorCode, what: string): unknown {
  let raw: unknown;
  try {
    raw = msgpack.decode(toBuffer(bytes), { codec });
  } catch (err) {
    throw new LoomError(code, `${what} is not valid msgpack`, { cause: err });
  }
  const stack: unknown[] = [raw];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    const proto: unknown = Object.getPrototypeOf(v);
    const standard =
      proto !== null &&
      typeof proto === 'object' &&
      Object.hasOwn(proto, 'constructor') &&
      (proto as { constructor: { prototype?: unknown } }).constructor.prototype === proto;
    if (!standard) throw new LoomError(code, `${what} holds a map with a "__proto__" key`);
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) continue;
    // Only objects can carry a prototype: a long array of numbers costs one pass, not a key list.
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push(child);
    }
  }
  return raw;
}

/** Message → frame bytes. Reverse of `decodeMessage`. */
export function encodeMessage(msg: Message): Buffer {
  const body: Record<string, unknown> = { ...(msg.body as unknown as Record<string, unknown>) };
  for (const [k, v] of Object.entries(body)) if (v instanceof Uint8Array) body[k] = toBuffer(v);
  const envelope: Record<string, unknown> = { v: ENVELOPE_VERSION, id: msg.id, type: msg.type, body };
  if (msg.replyTo) envelope.replyTo = msg.replyTo;
  return msgpack.encode(envelope, { codec });
}

/** Options of `encodeFrames`. */
export interface EncodeFramesOptions {
  /** Chunks are at most this many bytes. */
  chunkBytes: number;
  /**
   * Payloads larger than this are sent as chunks (default `chunkBytes`). A sender of one payload to
   * many receivers sets it low: chunk frames are encoded once and shared, a message frame is not.
   */
  chunkAbove?: number;
  /**
   * Chunk frames made before, by payload: a payload sent to many receivers (a round's global
   * weights) is cut, hashed and encoded once. Keyed by the payload's bytes object, so it lives as
   * long as they do.
   */
  cache?: WeakMap<Uint8Array, { ref: PayloadRef; frames: Buffer[] }>;
}

/**
 * Message → the frames to send, in order: the message's payload cut into `chunk` frames when it
 * is larger than `chunkBytes`, then the message with a reference in its place; otherwise just the
 * message's one frame.
 */
export function encodeFrames(msg: Message, options: EncodeFramesOptions): Buffer[] {
  const field = PAYLOAD_FIELDS[msg.type];
  const bytes = field ? ((msg.body as unknown as Record<string, unknown>)[field] as Uint8Array) : undefined;
  if (
    !field ||
    !(bytes instanceof Uint8Array) ||
    bytes.byteLength <= (options.chunkAbove ?? options.chunkBytes)
  ) {
    return [encodeMessage(msg)];
  }
  let chunked = options.cache?.get(bytes);
  if (!chunked) {
    const { ref, chunks } = chunkPayload(bytes, options.chunkBytes);
    chunked = { ref, frames: chunks.map((c) => encodeMessage(createMessage('chunk', c))) };
    options.cache?.set(bytes, chunked);
  }
  const body = { ...(msg.body as unknown as Record<string, unknown>), [field]: chunked.ref };
  const envelope: Record<string, unknown> = { v: ENVELOPE_VERSION, id: msg.id, type: msg.type, body };
  if (msg.replyTo) envelope.replyTo = msg.replyTo;
  return [...chunked.frames, msgpack.encode(envelope, { codec })];
}

/** Tensors → bytes for a `weights` / `update` field. Reverse of `decodeTensorBytes`. */
export function encodeTensorBytes(weights: readonly WeightTensor[]): Buffer {
  const wire = encodeTensors(weights).map((t) => ({ ...t, bytes: toBuffer(t.bytes) }));
  return msgpack.encode(wire, { codec });
}

/** Bytes of a `weights` / `update` field → tensors; throws LOOM_ERR_TENSOR on bad content. */
export function decodeTensorBytes(bytes: Uint8Array): WeightTensor[] {
  return decodeTensors(decodeMsgpack(bytes, 'LOOM_ERR_TENSOR', 'tensor list'));
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function modelRef(r: FieldReader): ModelRef {
  return {
    name: r.string('name', { pattern: NAME }),
    version: r.integer('version', { min: 1 }),
    architecture: frameArchitecture(r.raw('architecture')),
  };
}

/** A bad architecture inside a frame is a bad frame: LOOM_ERR_PROTOCOL, not LOOM_ERR_MODEL_SPEC. */
function frameArchitecture(raw: unknown): ModelArchitecture {
  try {
    return parseArchitecture(raw, 'body.model.architecture');
  } catch (err) {
    if (!isLoomError(err)) throw err;
    throw new LoomError('LOOM_ERR_PROTOCOL', err.message, {
      cause: err,
      ...(err.details ? { details: err.details } : {}),
    });
  }
}

/** Options of `decodeMessage`. */
export interface DecodeOptions {
  /**
   * Where a payload sent as chunks is found when a message names it instead of carrying its
   * bytes (a PayloadAssembler's `take`). Without it, such a message is refused.
   */
  payloads?: (ref: PayloadRef) => Uint8Array;
}

type BodyDecoder<T extends MessageType> = (r: FieldReader, options: DecodeOptions) => MessageBodies[T];

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A payload field: its bytes, or a reference `{ref, size}` to a payload sent as chunks before. */
function payload(r: FieldReader, key: string, options: DecodeOptions): Uint8Array {
  const raw = r.raw(key);
  if (raw instanceof Uint8Array || raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return r.bytes(key);
  }
  const ref = r.object(key);
  const value: PayloadRef = {
    ref: ref.string('ref', { pattern: SHA256_HEX }),
    size: ref.integer('size', { min: 0 }),
  };
  if (!options.payloads) r.fail(key, 'refers to a chunked payload, which this side does not take here');
  return options.payloads(value);
}

function datasetSummary(r: FieldReader): DatasetSummary {
  const count = { min: 0, max: Number.MAX_SAFE_INTEGER };
  let featureStats: FeatureStats | null = null;
  if (r.raw('featureStats') !== null) {
    const f = r.object('featureStats');
    const groups = f.integer('groups', { min: 1, max: SUMMARY_LIMITS.featureGroups });
    const column = (key: string): number[] => {
      const values = f.numberArray(key, { max: SUMMARY_LIMITS.featureGroups });
      if (values.length !== groups) f.fail(key, `must hold ${groups} values, one per group`);
      return values;
    };
    featureStats = {
      groupSize: f.integer('groupSize', { min: 1, max: 1 << 30 }),
      groups,
      min: column('min'),
      max: column('max'),
      mean: column('mean'),
    };
  }
  const other = r.object('otherLabels');
  return {
    examples: r.integer('examples', { min: 0, max: MAX_EXAMPLES_PER_UPDATE }),
    featureShape: r.numberArray('featureShape', { max: 8, min: 1, integer: true }),
    features: r.integer('features', count),
    labels: r.array('labels', { max: SUMMARY_LIMITS.labels }).map((raw, i) => {
      const l = FieldReader.of(raw, `body.dataset.labels.${i}`);
      return {
        value: l.integer('value', { min: -(2 ** 31), max: 2 ** 31 - 1 }),
        count: l.integer('count', count),
      };
    }),
    otherLabels: { distinct: other.integer('distinct', count), examples: other.integer('examples', count) },
    nonFiniteValues: r.integer('nonFiniteValues', count),
    featureStats,
  };
}

/**
 * A serving-health entry: bounded counts, errors within requests, and a latency histogram of the
 * fixed buckets that adds up to the requests (an agent may lie, but not inconsistently).
 */
function versionHealth(r: FieldReader): MessageBodies['serving-health']['versions'][number] {
  const count = { min: 0, max: MAX_HEALTH_COUNT };
  const requests = r.integer('requests', count);
  const errors = r.integer('errors', count);
  if (errors > requests) r.fail('errors', 'must not be more than requests');
  const latency = r.numberArray('latency', {
    max: HEALTH_LATENCY_BUCKETS_MS.length + 1,
    min: 0,
    integer: true,
  });
  if (latency.length !== HEALTH_LATENCY_BUCKETS_MS.length + 1) {
    r.fail('latency', `must hold ${HEALTH_LATENCY_BUCKETS_MS.length + 1} counts, one per bucket`);
  }
  if (latency.reduce((a, b) => a + b, 0) !== requests) r.fail('latency', 'must add up to requests');
  return {
    name: r.string('name', { pattern: NAME }),
    version: r.integer('version', { min: 1 }),
    requests,
    errors,
    latency,
  };
}

/** A short software name or version an agent claims (`v20.11.1`, `tfjs-wasm`): printable, no spaces. */
const SOFTWARE_TEXT = /^[A-Za-z0-9][A-Za-z0-9._+:@/-]{0,63}$/;

/** An optional string an agent claims about itself, bounded by `pattern`; `{}` when absent. */
function optionalClaim<K extends string>(
  r: FieldReader,
  key: K,
  pattern: RegExp,
): Partial<Record<K, string>> {
  const value = r.optionalString(key, { max: 64, pattern });
  return (value === undefined ? {} : { [key]: value }) as Partial<Record<K, string>>;
}

/** An ISO 8601 time as `Date.toISOString` writes it. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/** The optional hold-out share of a train task (absent from older coordinators). */
function optionalHoldout(r: FieldReader): { holdoutFraction?: number } {
  const fraction = r.optionalNumber('holdoutFraction', { min: 0, max: HOLDOUT_DEFAULTS.maxFraction });
  return fraction === undefined ? {} : { holdoutFraction: fraction };
}

const BODY_DECODERS: { [T in MessageType]: BodyDecoder<T> } = {
  hello: (r) => ({
    protocolVersions: r
      .array('protocolVersions', { max: 16 })
      .map((v) =>
        Number.isSafeInteger(v) ? (v as number) : r.fail('protocolVersions', 'must hold integers'),
      ),
    agentVersion: r.string('agentVersion', { max: 64 }),
    backend: r.string('backend', { max: 64 }),
    models: r.array('models', { max: 1024 }).map((m, i) => {
      const mr = FieldReader.of(m, `body.models.${i}`);
      return { name: mr.string('name', { pattern: NAME }), version: mr.integer('version', { min: 1 }) };
    }),
    dataset: datasetSummary(r.object('dataset')),
    ...optionalClaim(r, 'runtime', SOFTWARE_TEXT),
    ...optionalClaim(r, 'training', SOFTWARE_TEXT),
    ...optionalClaim(r, 'dataFingerprint', SHA256_HEX),
    ...(r.has('partial')
      ? {
          partial: r.array('partial', { max: 4 }).map((raw, i) => {
            const p = FieldReader.of(raw, `body.partial.${i}`);
            const count = p.integer('count', { min: 1, max: 1 << 20 });
            const have = p.bytes('have');
            if (have.byteLength !== Math.ceil(count / 8))
              p.fail('have', `must hold ${Math.ceil(count / 8)} bytes`);
            return { payload: p.string('payload', { pattern: SHA256_HEX }), count, have };
          }),
        }
      : {}),
    ...(r.has('stored')
      ? {
          stored: r.array('stored', { max: 4096 }).map((m, i) => {
            const mr = FieldReader.of(m, `body.stored.${i}`);
            return { name: mr.string('name', { pattern: NAME }), version: mr.integer('version', { min: 1 }) };
          }),
        }
      : {}),
  }),
  welcome: (r) => ({
    protocolVersion: r.integer('protocolVersion', { min: 1 }),
    agentId: r.string('agentId', { pattern: ID }),
    heartbeatIntervalMs: r.integer('heartbeatIntervalMs', { min: 10 }),
    chunkBytes: r.integer('chunkBytes', { min: 1024, max: 2 ** 31 - 1 }),
  }),
  train: (r, o) => ({
    taskId: r.string('taskId', { pattern: ID }),
    jobId: r.string('jobId', { pattern: ID }),
    round: r.integer('round', { min: 1 }),
    model: modelRef(r.object('model')),
    hyper: (() => {
      const h = r.object('hyper');
      return {
        epochs: h.integer('epochs', { min: 1, max: 1000 }),
        batchSize: h.integer('batchSize', { min: 1, max: 1 << 16 }),
        learningRate: h.number('learningRate', { min: 0, exclusiveMin: true, max: 100 }),
      };
    })(),
    weights: payload(r, 'weights', o),
    ...optionalHoldout(r),
  }),
  evaluate: (r, o) => ({
    taskId: r.string('taskId', { pattern: ID }),
    evaluationId: r.string('evaluationId', { pattern: ID }),
    model: modelRef(r.object('model')),
    weights: payload(r, 'weights', o),
    holdoutFraction: r.number('holdoutFraction', { min: 0, max: HOLDOUT_DEFAULTS.maxFraction }),
  }),
  'evaluate-result': (r) => ({
    taskId: r.string('taskId', { pattern: ID }),
    evaluationId: r.string('evaluationId', { pattern: ID }),
    numExamples: r.integer('numExamples', { min: 0, max: MAX_EXAMPLES_PER_UPDATE }),
    // Shape and sums are the coordinator's check (it knows the model); here only the types.
    loss: r.number('loss', { min: 0 }),
    accuracy: r.number('accuracy', { min: 0, max: 1 }),
    confusion: r.array('confusion', { max: MAX_EVALUATION_CLASSES }).map((row: unknown, i) => {
      if (!Array.isArray(row) || row.length > MAX_EVALUATION_CLASSES) {
        return r.fail(`confusion.${i}`, `must be an array of at most ${MAX_EVALUATION_CLASSES} counts`);
      }
      for (const n of row as unknown[]) {
        if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
          r.fail(`confusion.${i}`, 'must hold non-negative integers');
      }
      return row as number[];
    }),
    evalMs: r.number('evalMs', { min: 0 }),
  }),
  'train-result': (r, o) => ({
    taskId: r.string('taskId', { pattern: ID }),
    jobId: r.string('jobId', { pattern: ID }),
    round: r.integer('round', { min: 1 }),
    // Bounded so one agent's claimed count cannot overflow the weighted sum.
    numExamples: r.integer('numExamples', { min: 0, max: MAX_EXAMPLES_PER_UPDATE }),
    metrics: r.numberRecord('metrics', { maxKeys: 32 }),
    update: payload(r, 'update', o),
    trainMs: r.number('trainMs', { min: 0 }),
  }),
  'task-error': (r) => {
    const permanent = r.optionalBoolean('permanent');
    return {
      taskId: r.string('taskId', { pattern: ID }),
      code: r.string('code', { max: 64 }),
      message: r.string('message', { max: 4096 }),
      ...(permanent === undefined ? {} : { permanent }),
    };
  },
  cancel: (r) => ({ taskId: r.string('taskId', { pattern: ID }) }),
  deploy: (r, o) => ({
    model: modelRef(r.object('model')),
    weights: payload(r, 'weights', o),
    sha256: r.string('sha256', { pattern: /^[0-9a-f]{64}$/ }),
    signature: r.bytes('signature'),
    signerCertificate: r.string('signerCertificate', { max: 16_384 }),
  }),
  activate: (r) => ({
    model: modelRef(r.object('model')),
    sha256: r.string('sha256', { pattern: SHA256_HEX }),
    signature: r.bytes('signature'),
    signerCertificate: r.string('signerCertificate', { max: 16_384 }),
  }),
  renew: (r) => ({ csr: r.string('csr', { max: 16_384 }) }),
  renewed: (r) => ({
    certificate: r.string('certificate', { max: 16_384 }),
    notAfter: r.string('notAfter', { max: 64 }),
  }),
  'deploy-ack': (r) => {
    const error = r.optionalString('error', { max: 4096 });
    return {
      name: r.string('name', { pattern: NAME }),
      version: r.integer('version', { min: 1 }),
      ok: r.boolean('ok'),
      ...(error === undefined ? {} : { error }),
    };
  },
  chunk: (r) => {
    const count = r.integer('count', { min: 1, max: 1 << 20 });
    const index = r.integer('index', { min: 0, max: count - 1 });
    return {
      payload: r.string('payload', { pattern: SHA256_HEX }),
      index,
      count,
      size: r.integer('size', { min: 0 }),
      sha256: r.string('sha256', { pattern: SHA256_HEX }),
      bytes: r.bytes('bytes'),
    };
  },
  'serving-health': (r) => ({
    intervalMs: r.integer('intervalMs', { min: 0, max: 86_400_000 }),
    versions: r
      .array('versions', { max: MAX_HEALTH_VERSIONS })
      .map((v, i) => versionHealth(FieldReader.of(v, `body.versions.${i}`))),
  }),
  retirement: (r) => ({
    name: r.string('name', { pattern: NAME }),
    version: r.integer('version', { min: 1 }),
    successor: r.integer('successor', { min: 1 }),
    deprecatedAt: r.string('deprecatedAt', { pattern: ISO_TIME, max: 32 }),
    sunsetAt: r.string('sunsetAt', { pattern: ISO_TIME, max: 32 }),
  }),
  error: (r) => ({ code: r.string('code', { max: 64 }), message: r.string('message', { max: 4096 }) }),
};

/**
 * Frame bytes (untrusted) → a validated message. Throws LOOM_ERR_PROTOCOL naming what is wrong:
 * not msgpack, not an envelope, unknown type, or a body field of the wrong type.
 */
export function decodeMessage(frame: Uint8Array, options: DecodeOptions = {}): Message {
  const raw = decodeMsgpack(frame, 'LOOM_ERR_PROTOCOL', 'frame');
  const env = FieldReader.of(raw, '');
  if (env.raw('v') !== ENVELOPE_VERSION) {
    throw new LoomError('LOOM_ERR_PROTOCOL', `unsupported envelope version ${String(env.raw('v'))}`);
  }
  const id = env.string('id', { pattern: ID });
  const type = env.string('type', { max: 32 }) as MessageType;
  if (!MESSAGE_TYPES.includes(type))
    throw new LoomError('LOOM_ERR_PROTOCOL', `unknown message type "${type}"`);
  const replyTo = env.optionalString('replyTo', { pattern: ID });
  const decodeBody = BODY_DECODERS[type] as BodyDecoder<MessageType>;
  const body = decodeBody(env.object('body'), options);
  return { type, id, body, ...(replyTo ? { replyTo } : {}) } as Message;
}

// Frame codec: one msgpack envelope {v, id, type, replyTo?, body} per WebSocket frame, and the
// encoding of tensor lists inside bodies. Decoding validates everything it returns.
import { randomUUID } from 'node:crypto';
import msgpack from 'msgpack-lite';
import { isLoomError, LoomError, type LoomErrorCode } from '../errors/index.ts';
import { type ModelArchitecture, parseArchitecture } from '../models/index.ts';
import { decodeTensors, encodeTensors, type WeightTensor } from '../tensors/index.ts';
import { FieldReader } from './fields.ts';
import {
  MESSAGE_TYPES,
  type Message,
  type MessageBodies,
  type MessageOf,
  type MessageType,
  type ModelRef,
} from './messages.ts';

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

type BodyDecoder<T extends MessageType> = (r: FieldReader) => MessageBodies[T];

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
  }),
  welcome: (r) => ({
    protocolVersion: r.integer('protocolVersion', { min: 1 }),
    agentId: r.string('agentId', { pattern: ID }),
    heartbeatIntervalMs: r.integer('heartbeatIntervalMs', { min: 10 }),
  }),
  train: (r) => ({
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
    weights: r.bytes('weights'),
  }),
  'train-result': (r) => ({
    taskId: r.string('taskId', { pattern: ID }),
    jobId: r.string('jobId', { pattern: ID }),
    round: r.integer('round', { min: 1 }),
    // Bounded so one agent's claimed count cannot overflow the weighted sum.
    numExamples: r.integer('numExamples', { min: 0, max: MAX_EXAMPLES_PER_UPDATE }),
    metrics: r.numberRecord('metrics', { maxKeys: 32 }),
    update: r.bytes('update'),
    trainMs: r.number('trainMs', { min: 0 }),
  }),
  'task-error': (r) => ({
    taskId: r.string('taskId', { pattern: ID }),
    code: r.string('code', { max: 64 }),
    message: r.string('message', { max: 4096 }),
  }),
  cancel: (r) => ({ taskId: r.string('taskId', { pattern: ID }) }),
  deploy: (r) => ({
    model: modelRef(r.object('model')),
    weights: r.bytes('weights'),
    sha256: r.string('sha256', { pattern: /^[0-9a-f]{64}$/ }),
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
  error: (r) => ({ code: r.string('code', { max: 64 }), message: r.string('message', { max: 4096 }) }),
};

/**
 * Frame bytes (untrusted) → a validated message. Throws LOOM_ERR_PROTOCOL naming what is wrong:
 * not msgpack, not an envelope, unknown type, or a body field of the wrong type.
 */
export function decodeMessage(frame: Uint8Array): Message {
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
  const body = decodeBody(env.object('body'));
  return { type, id, body, ...(replyTo ? { replyTo } : {}) } as Message;
}

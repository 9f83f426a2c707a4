// Fuzz targets of the frame codec: decodeMessage on any bytes, on any msgpack value, and on valid
// frames of every message type with a few changes, must return a valid message or throw
// LOOM_ERR_PROTOCOL; a valid message of every type must come back from encode → decode unchanged.
import * as fc from 'fast-check';
import msgpack from 'msgpack-lite';
import {
  decodeMessage,
  ENVELOPE_VERSION,
  encodeFrames,
  encodeMessage,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
  PayloadAssembler,
} from '../../../shared/protocol/index.ts';
import { assertSame } from '../harness/equal.ts';
import { applyByteEdits, type ByteEdit, byteEdit, mutated, mutatedBytes } from '../harness/mutate.ts';
import { invariant, outcomeOf } from '../harness/outcome.ts';
import { defineTarget, type FuzzTarget } from '../harness/target.ts';
import { anyString, anyValue } from '../harness/values.ts';
import { BODY_ARBITRARIES, ID_PATTERN, protocolId } from './protocol-bodies.ts';
import { checkTensorList } from './tensors.ts';

/** The codec's msgpack options, so hand-made frames carry binary and extension types as real ones do. */
const codec = msgpack.createCodec({ binarraybuffer: false, preset: true });

/** Body fields that carry an encoded tensor list, by message type. */
const TENSOR_FIELDS: Partial<Record<MessageType, string>> = {
  train: 'weights',
  'train-result': 'update',
  deploy: 'weights',
};

/** The body arbitrary of `type`; a clear failure when someone added a type and no arbitrary. */
export function bodyArbitrary(type: MessageType): fc.Arbitrary<Message['body']> {
  const arb = (BODY_ARBITRARIES as Partial<Record<string, fc.Arbitrary<Message['body']>>>)[type];
  if (!arb)
    throw new Error(`message type "${type}" has no arbitrary in test/fuzz/targets/protocol-bodies.ts`);
  return arb;
}

/** Valid messages of every type in MESSAGE_TYPES, with and without replyTo. */
export function validMessage(): fc.Arbitrary<Message> {
  return fc.constantFrom(...MESSAGE_TYPES).chain((type) =>
    fc
      .record({
        id: protocolId(),
        replyTo: fc.option(protocolId(), { nil: undefined }),
        body: bodyArbitrary(type),
      })
      .map(
        ({ id, replyTo, body }) =>
          ({ type, id, body, ...(replyTo === undefined ? {} : { replyTo }) }) as Message,
      ),
  );
}

/** A message as the plain envelope value encodeMessage writes, before msgpack. */
function envelopeOf(msg: Message): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(msg.body)) body[k] = v instanceof Uint8Array ? Buffer.from(v) : v;
  return {
    v: ENVELOPE_VERSION,
    id: msg.id,
    type: msg.type,
    body,
    ...(msg.replyTo ? { replyTo: msg.replyTo } : {}),
  };
}

/** msgpack bytes of `value`, or undefined when msgpack-lite cannot encode it (then it is no frame). */
function encodeValue(value: unknown): Buffer | undefined {
  try {
    return msgpack.encode(value, { codec });
  } catch {
    return undefined;
  }
}

/**
 * The property of every decode target: a LoomError LOOM_ERR_PROTOCOL, or a message that is valid
 * in itself — a known type, valid ids, and a fixed point of encode → decode (so everything the
 * decoder lets through is something the encoder can send again) — whose tensor fields decode to
 * tensors or fail with LOOM_ERR_TENSOR only.
 */
export function checkFrame(frame: Uint8Array): void {
  const decoded = outcomeOf(() => decodeMessage(frame), ['LOOM_ERR_PROTOCOL']);
  if (!decoded.ok) return;
  const msg = decoded.value;
  invariant(MESSAGE_TYPES.includes(msg.type), `decoded an unknown type ${JSON.stringify(msg.type)}`);
  invariant(ID_PATTERN.test(msg.id), `decoded an invalid id ${JSON.stringify(msg.id)}`);
  if (msg.replyTo !== undefined) invariant(ID_PATTERN.test(msg.replyTo), 'decoded an invalid replyTo');
  const again = outcomeOf(() => decodeMessage(encodeMessage(msg)), ['LOOM_ERR_PROTOCOL']);
  invariant(
    again.ok,
    `a decoded message does not decode after encodeMessage: ${again.ok ? '' : again.error.message}`,
  );
  assertSame(again.value, msg, 'decode → encode → decode', { ignoreZeroSign: true });
  const field = TENSOR_FIELDS[msg.type];
  if (field) checkTensorList((msg.body as unknown as Record<string, Uint8Array>)[field]);
}

/** Arbitrary msgpack values: anything, and envelopes with any field wrong. */
function anyFrameValue(): fc.Arbitrary<unknown> {
  const value = fc.anything({
    maxDepth: 3,
    maxKeys: 6,
    withTypedArray: true,
    withDate: true,
    withNullPrototype: true,
    stringUnit: 'binary',
  });
  const field = fc.oneof(value, anyValue({ binary: true }));
  const envelope = fc.record(
    {
      v: fc.oneof({ weight: 4, arbitrary: fc.constant(ENVELOPE_VERSION) }, { weight: 1, arbitrary: field }),
      id: fc.oneof(protocolId(), anyString(), field),
      type: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...MESSAGE_TYPES) },
        { weight: 1, arbitrary: anyString() },
        { weight: 1, arbitrary: field },
      ),
      replyTo: fc.oneof(protocolId(), field),
      body: fc.oneof(fc.dictionary(fc.string({ maxLength: 12 }), field, { maxKeys: 8 }), field),
    },
    { requiredKeys: ['v', 'id', 'type', 'body'] },
  );
  return fc.oneof(value, envelope);
}

const asFrame = (value: fc.Arbitrary<unknown>): fc.Arbitrary<Uint8Array> =>
  value.map(encodeValue).filter((b): b is Buffer => b !== undefined);

export const protocolTargets: FuzzTarget[] = [
  defineTarget({
    name: 'protocol.decode-bytes',
    description: 'decodeMessage on arbitrary bytes: a valid message or LOOM_ERR_PROTOCOL',
    shortRuns: 300,
    input: () =>
      fc.oneof(
        fc.uint8Array({ maxLength: 256 }),
        fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => Uint8Array.from([0x85, ...b])),
      ),
    check: checkFrame,
  }),
  defineTarget({
    name: 'protocol.decode-values',
    description:
      'decodeMessage on msgpack of arbitrary values and envelopes: a valid message or LOOM_ERR_PROTOCOL',
    shortRuns: 300,
    input: () => asFrame(anyFrameValue()),
    check: checkFrame,
  }),
  defineTarget({
    name: 'protocol.decode-mutated',
    description:
      'decodeMessage on valid frames of every type with a few bytes or one field changed: a valid message or LOOM_ERR_PROTOCOL',
    shortRuns: 300,
    input: () =>
      fc.oneof(
        mutatedBytes(validMessage().map(encodeMessage)),
        asFrame(mutated(validMessage().map(envelopeOf), { replacement: anyValue({ binary: true }) })),
      ),
    check: checkFrame,
  }),
  defineTarget({
    name: 'protocol.round-trip',
    description: 'encodeMessage → decodeMessage gives back every valid message of every type unchanged',
    shortRuns: 300,
    input: validMessage,
    check: (msg: Message) => {
      assertSame(decodeMessage(encodeMessage(msg)), msg, 'encode → decode');
    },
  }),
];

/** A frame-level change to a chunked transfer: a frame lost, sent twice, out of order, or damaged. */
type FrameEdit =
  | { kind: 'drop' | 'duplicate'; at: number }
  | { kind: 'swap'; at: number; with: number }
  | { kind: 'bytes'; at: number; edits: ByteEdit[] };

function applyFrameEdits(frames: readonly Buffer[], edits: readonly FrameEdit[]): Buffer[] {
  const out = [...frames];
  for (const e of edits) {
    if (out.length === 0) break;
    const i = e.at % out.length;
    switch (e.kind) {
      case 'drop':
        out.splice(i, 1);
        break;
      case 'duplicate':
        out.splice(i, 0, out[i]);
        break;
      case 'swap': {
        const j = e.with % out.length;
        [out[i], out[j]] = [out[j], out[i]];
        break;
      }
      case 'bytes':
        out[i] = applyByteEdits(out[i], e.edits);
        break;
    }
  }
  return out;
}

interface ChunkedCase {
  message: Message;
  chunkBytes: number;
  edits: FrameEdit[];
}

/** Messages whose payload field is large enough to travel in chunks. */
function payloadMessage(bytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Message> {
  return fc.constantFrom<MessageType>('train', 'train-result', 'deploy').chain((type) =>
    fc.record({ id: protocolId(), body: bodyArbitrary(type), bytes }).map(({ id, body, bytes }) => {
      const field = type === 'train-result' ? 'update' : 'weights';
      return { type, id, body: { ...body, [field]: bytes } } as Message;
    }),
  );
}

function frameEdit(): fc.Arbitrary<FrameEdit> {
  return fc.oneof(
    fc.record({ kind: fc.constantFrom('drop' as const, 'duplicate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), with: fc.nat() }),
    fc.record({
      kind: fc.constant('bytes' as const),
      at: fc.nat(),
      edits: fc.array(byteEdit(), { minLength: 1, maxLength: 3 }),
    }),
  );
}

/** Limits of the receiving side in this target: small, so that going past them is a case too. */
const RECEIVER = { maxPayloadBytes: 4096, maxPending: 2 };

/**
 * A message sent as frames (chunks, then the message naming them), some frames changed, received
 * frame by frame as a connection does: each frame decodes, or the connection ends with
 * LOOM_ERR_PROTOCOL. Unchanged frames give back the message; changed ones never give a message
 * with other payload bytes than were chunked, and the receiver never holds more than its limits.
 */
function checkChunked({ message, chunkBytes, edits }: ChunkedCase): void {
  const sentFrames = encodeFrames(message, { chunkBytes });
  const frames = applyFrameEdits(sentFrames, edits);
  const assembler = new PayloadAssembler({
    maxPayloadBytes: () => RECEIVER.maxPayloadBytes,
    maxPending: RECEIVER.maxPending,
  });
  const received: Message[] = [];
  for (const frame of frames) {
    const step = outcomeOf(() => {
      const msg = decodeMessage(frame, { payloads: (ref) => assembler.take(ref) });
      if (msg.type === 'chunk') assembler.accept(msg.body);
      return msg;
    }, ['LOOM_ERR_PROTOCOL']);
    invariant(
      assembler.heldBytes <= RECEIVER.maxPending * RECEIVER.maxPayloadBytes,
      `the receiver holds ${assembler.heldBytes} bytes`,
    );
    if (!step.ok) return; // the connection ends here
    if (step.value.type !== 'chunk') received.push(step.value);
  }
  const field = message.type === 'train-result' ? 'update' : 'weights';
  const sent = (message.body as unknown as Record<string, Uint8Array>)[field];
  // Only a chunked payload is hashed (a frame's own bytes are TLS's to protect): whatever frames
  // were lost, repeated or damaged, it arrives as sent or not at all.
  const chunked = sentFrames.length > 1;
  for (const msg of received) {
    if (!chunked || msg.type !== message.type) continue;
    const got = (msg.body as unknown as Record<string, Uint8Array>)[field];
    invariant(
      Buffer.from(got).equals(Buffer.from(sent)),
      'a message arrived with other payload bytes than were sent',
    );
  }
  if (edits.length === 0 && (!chunked || sent.byteLength <= RECEIVER.maxPayloadBytes)) {
    invariant(received.length === 1, `an unchanged transfer gave ${received.length} messages`);
    assertSame(received[0], message, 'encodeFrames → chunks → decodeMessage');
  }
}

protocolTargets.push(
  defineTarget({
    name: 'protocol.chunks',
    description:
      'encodeFrames with small chunks, frames dropped, repeated, reordered or damaged, reassembled by a PayloadAssembler: the message unchanged, or LOOM_ERR_PROTOCOL',
    shortRuns: 200,
    input: () => {
      // Mostly small payloads in many chunks; now and then one past the receiver's limit.
      const sized = fc.oneof(
        {
          weight: 9,
          arbitrary: fc.record({
            bytes: fc.uint8Array({ maxLength: 600 }),
            chunkBytes: fc.integer({ min: 1, max: 256 }),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({
            bytes: fc.uint8Array({
              minLength: RECEIVER.maxPayloadBytes - 8,
              maxLength: RECEIVER.maxPayloadBytes + 8,
            }),
            chunkBytes: fc.integer({ min: 512, max: 2048 }),
          }),
        },
      );
      return fc
        .record({
          sized,
          edits: fc.oneof(
            { weight: 2, arbitrary: fc.constant([]) },
            { weight: 3, arbitrary: fc.array(frameEdit(), { minLength: 1, maxLength: 3 }) },
          ),
        })
        .chain(({ sized, edits }) =>
          payloadMessage(fc.constant(sized.bytes)).map((message) => ({
            message,
            chunkBytes: sized.chunkBytes,
            edits,
          })),
        );
    },
    check: checkChunked,
  }),
);

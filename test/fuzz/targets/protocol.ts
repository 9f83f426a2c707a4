// Fuzz targets of the frame codec: decodeMessage on any bytes, on any msgpack value, and on valid
// frames of every message type with a few changes, must return a valid message or throw
// LOOM_ERR_PROTOCOL; a valid message of every type must come back from encode → decode unchanged.
import * as fc from 'fast-check';
import msgpack from 'msgpack-lite';
import {
  decodeMessage,
  ENVELOPE_VERSION,
  encodeMessage,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
} from '../../../shared/protocol/index.ts';
import { assertSame } from '../harness/equal.ts';
import { mutated, mutatedBytes } from '../harness/mutate.ts';
import { invariant, outcomeOf } from '../harness/outcome.ts';
import { defineTarget } from '../harness/target.ts';
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

export const protocolTargets = [
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

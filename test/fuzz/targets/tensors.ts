// Fuzz targets of the tensor codec: decodeTensorBytes / decodeTensors on any input fail with
// LOOM_ERR_TENSOR or return consistent float32 tensors; blobToWeights / blobDataOffset fail with
// LOOM_ERR_STORE or agree with each other; splitWeightData fails with LOOM_ERR_TENSOR or cuts the
// bytes exactly; and every encoding gives back the weights bit for bit.
import * as fc from 'fast-check';
import msgpack from 'msgpack-lite';
import { decodeTensorBytes, encodeTensorBytes } from '../../../shared/protocol/index.ts';
import {
  blobDataOffset,
  blobToWeights,
  concatWeightData,
  decodeTensors,
  encodeTensors,
  sizeOf,
  specsOf,
  splitWeightData,
  type WeightSpec,
  type WeightTensor,
  weightsToBlob,
} from '../../../shared/tensors/index.ts';
import { assertSame } from '../harness/equal.ts';
import { mutated, mutatedBytes } from '../harness/mutate.ts';
import { invariant, outcomeOf } from '../harness/outcome.ts';
import { defineTarget } from '../harness/target.ts';
import { anyValue } from '../harness/values.ts';
import { weightTensors } from './protocol-bodies.ts';

const codec = msgpack.createCodec({ binarraybuffer: false, preset: true });
const BLOB_MAGIC = Buffer.from('LOOMW1\n', 'latin1');

/** Throws unless `weights` are well-formed float32 tensors (what every decoder must return). */
export function assertWellFormed(weights: readonly WeightTensor[], what: string): void {
  invariant(Array.isArray(weights), `${what} did not return an array`);
  weights.forEach((w, i) => {
    invariant(typeof w.name === 'string', `${what}: tensor ${i} has no string name`);
    invariant(w.dtype === 'float32', `${what}: tensor ${i} has dtype ${String(w.dtype)}`);
    invariant(
      Array.isArray(w.shape) && w.shape.every((d: number) => Number.isSafeInteger(d) && d >= 0),
      `${what}: tensor ${i} has shape ${JSON.stringify(w.shape)}`,
    );
    invariant(w.data instanceof Float32Array, `${what}: tensor ${i} data is not a Float32Array`);
    invariant(
      w.data.length === sizeOf(w.shape),
      `${what}: tensor ${i} has ${w.data.length} values for shape [${w.shape}]`,
    );
  });
}

/** The bytes of a `weights` / `update` field: LOOM_ERR_TENSOR, or tensors that re-encode to the same tensors. */
export function checkTensorList(bytes: Uint8Array): void {
  const out = outcomeOf(() => decodeTensorBytes(bytes), ['LOOM_ERR_TENSOR']);
  if (!out.ok) return;
  assertWellFormed(out.value, 'decodeTensorBytes');
  out.value.forEach((w, i) => {
    invariant(
      w.name.length >= 1 && w.name.length <= 256,
      `decodeTensorBytes: tensor ${i} name has ${w.name.length} characters`,
    );
    invariant(w.shape.length <= 8, `decodeTensorBytes: tensor ${i} has ${w.shape.length} dimensions`);
  });
  assertSame(decodeTensorBytes(encodeTensorBytes(out.value)), out.value, 'decode → encode → decode', {
    ignoreZeroSign: true,
  });
}

/** Wire tensor lists as a sender writes them, before msgpack. */
const wireList = (): fc.Arbitrary<unknown> =>
  weightTensors(4).map((ws) => encodeTensors(ws).map((t) => ({ ...t, bytes: Buffer.from(t.bytes) })));

function msgpackOf(value: unknown): Buffer | undefined {
  try {
    return msgpack.encode(value, { codec });
  } catch {
    return undefined;
  }
}

/** A blob whose JSON header is `header` (any value) and whose length field says `lengthDelta` more than it is. */
function blobWith(header: unknown, data: Uint8Array, lengthDelta: number): Buffer {
  const json = Buffer.from(JSON.stringify(header) ?? 'undefined');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(Math.max(0, Math.min(0xffff_ffff, json.length + lengthDelta)));
  return Buffer.concat([BLOB_MAGIC, len, json, data]);
}

/** Checks both blob readers on `blob`: each fails with LOOM_ERR_STORE or succeeds, and they agree. */
function checkBlob(blob: Uint8Array): void {
  const weights = outcomeOf(() => blobToWeights(blob), ['LOOM_ERR_STORE']);
  const offset = outcomeOf(() => blobDataOffset(blob), ['LOOM_ERR_STORE']);
  if (offset.ok) {
    invariant(
      Number.isSafeInteger(offset.value) &&
        offset.value >= BLOB_MAGIC.length + 4 &&
        offset.value <= blob.length,
      `blobDataOffset returned ${offset.value} for a ${blob.length}-byte blob`,
    );
  }
  if (!weights.ok) return;
  assertWellFormed(weights.value, 'blobToWeights');
  invariant(
    offset.ok,
    `blobToWeights read a blob that blobDataOffset refuses: ${offset.ok ? '' : offset.error.message}`,
  );
  // The tail a server hands out as weights.bin is exactly the data blobToWeights read.
  invariant(
    Buffer.from(blob.buffer, blob.byteOffset + offset.value, blob.length - offset.value).equals(
      concatWeightData(weights.value),
    ),
    'the blob tail after blobDataOffset is not the data blobToWeights read',
  );
}

const specList = (): fc.Arbitrary<WeightSpec[]> =>
  fc.array(
    fc.record({
      name: fc.string({ maxLength: 8 }),
      shape: fc.array(
        fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom(1 << 20, 2 ** 31, Number.MAX_SAFE_INTEGER)),
        { maxLength: 4 },
      ),
      dtype: fc.constant('float32' as const),
    }),
    { maxLength: 4 },
  );

/** Bits of float32 values, so NaN payloads compare exactly. */
function bitsEqual(a: Float32Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

export const tensorTargets = [
  defineTarget({
    name: 'tensors.decode-bytes',
    description:
      'decodeTensorBytes on any bytes, msgpack values and mutated tensor lists: LOOM_ERR_TENSOR or consistent tensors',
    shortRuns: 300,
    input: () =>
      fc.oneof(
        fc.uint8Array({ maxLength: 128 }),
        wireList().map((w) => msgpackOf(w) ?? Buffer.alloc(0)),
        mutatedBytes(wireList().map((w) => msgpackOf(w) ?? Buffer.alloc(0))),
        mutated(wireList(), { replacement: anyValue({ binary: true }) })
          .map(msgpackOf)
          .filter((b): b is Buffer => b !== undefined),
      ),
    check: checkTensorList,
  }),
  defineTarget({
    name: 'tensors.decode-wire',
    description:
      'decodeTensors on any value and on mutated wire tensor lists: LOOM_ERR_TENSOR or consistent tensors',
    shortRuns: 300,
    input: () =>
      fc.oneof(
        fc.anything({ maxDepth: 3, withTypedArray: true }),
        mutated(wireList(), { replacement: anyValue({ binary: true }), maxMutations: 3 }),
      ),
    check: (value: unknown) => {
      const out = outcomeOf(() => decodeTensors(value), ['LOOM_ERR_TENSOR']);
      if (out.ok) assertWellFormed(out.value, 'decodeTensors');
    },
  }),
  defineTarget({
    name: 'tensors.blob',
    description:
      'blobToWeights and blobDataOffset on any, mutated and mis-headed blobs: LOOM_ERR_STORE, or agreeing results',
    shortRuns: 300,
    input: () =>
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.concat([BLOB_MAGIC, b])),
        mutatedBytes(weightTensors().map(weightsToBlob)),
        fc
          .tuple(
            mutated(weightTensors().map(specsOf), { replacement: anyValue() }),
            fc.uint8Array({ maxLength: 48 }),
            fc.oneof(
              { weight: 3, arbitrary: fc.constant(0) },
              { weight: 1, arbitrary: fc.integer({ min: -8, max: 64 }) },
            ),
          )
          .map(([header, data, delta]) => blobWith(header, data, delta)),
      ),
    check: checkBlob,
  }),
  defineTarget({
    name: 'tensors.split',
    description:
      'splitWeightData on valid specs and any bytes: LOOM_ERR_TENSOR, or tensors that are the bytes cut in order',
    shortRuns: 300,
    input: () =>
      fc.oneof(
        fc.record({ specs: specList(), bytes: fc.uint8Array({ maxLength: 256 }) }),
        // Often the right length, so the success path is exercised too.
        specList()
          .filter((specs) => specs.reduce((n, s) => n + sizeOf(s.shape), 0) <= 64)
          .chain((specs) => {
            const n = specs.reduce((sum, s) => sum + sizeOf(s.shape), 0) * 4;
            return fc.record({
              specs: fc.constant(specs),
              bytes: fc.uint8Array({ minLength: n, maxLength: n }),
            });
          }),
      ),
    check: ({ specs, bytes }: { specs: WeightSpec[]; bytes: Uint8Array }) => {
      const out = outcomeOf(() => splitWeightData(specs, bytes), ['LOOM_ERR_TENSOR']);
      if (!out.ok) return;
      assertWellFormed(out.value, 'splitWeightData');
      invariant(out.value.length === specs.length, 'splitWeightData returned another number of tensors');
      let offset = 0;
      out.value.forEach((w, i) => {
        invariant(w.name === specs[i].name, `tensor ${i} is named ${w.name}, its spec ${specs[i].name}`);
        invariant(
          bitsEqual(w.data, bytes.subarray(offset, offset + w.data.byteLength)),
          `tensor ${i} is not its slice of the bytes`,
        );
        offset += w.data.byteLength;
      });
      invariant(offset === bytes.length, 'splitWeightData left bytes over');
    },
  }),
  defineTarget({
    name: 'tensors.round-trip',
    description:
      'every tensor encoding (wire, msgpack bytes, blob, weights.bin) gives back the weights bit for bit',
    shortRuns: 300,
    input: () => weightTensors(5),
    check: (weights: WeightTensor[]) => {
      assertSame(decodeTensors(encodeTensors(weights)), weights, 'encodeTensors → decodeTensors');
      assertSame(
        decodeTensorBytes(encodeTensorBytes(weights)),
        weights,
        'encodeTensorBytes → decodeTensorBytes',
      );
      const blob = weightsToBlob(weights);
      assertSame(blobToWeights(blob), weights, 'weightsToBlob → blobToWeights');
      const data = concatWeightData(weights);
      invariant(blob.subarray(blobDataOffset(blob)).equals(data), 'the blob tail is not concatWeightData');
      assertSame(splitWeightData(specsOf(weights), data), weights, 'concatWeightData → splitWeightData');
    },
  }),
];

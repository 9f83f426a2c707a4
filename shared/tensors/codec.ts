// Wire form of weights: {name, shape, dtype} beside raw little-endian bytes, and one binary
// blob form (used for registry storage and artifacts) with a small JSON header.
import { createHash } from 'node:crypto';
import { LoomError } from '../errors/index.ts';
import { sizeOf, type WeightSpec, type WeightTensor } from './weights.ts';

/** A tensor as it travels inside a protocol message. */
export interface WireTensor {
  name: string;
  shape: number[];
  dtype: string;
  bytes: Uint8Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function floatBytes(data: Float32Array): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error('big-endian hosts are not supported');
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Reads float32 values from bytes; copies when the bytes are not 4-byte aligned. */
function bytesToFloats(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

/** Weights → wire tensors. The bytes view the same memory; nothing is copied. */
export function encodeTensors(weights: readonly WeightTensor[]): WireTensor[] {
  return weights.map((w) => ({
    name: w.name,
    shape: [...w.shape],
    dtype: w.dtype,
    bytes: floatBytes(w.data),
  }));
}

/**
 * Wire tensors (untrusted) → weights. Validates every field; throws LOOM_ERR_TENSOR naming the
 * tensor at fault. Reverse of `encodeTensors`.
 */
export function decodeTensors(input: unknown): WeightTensor[] {
  if (!Array.isArray(input)) throw new LoomError('LOOM_ERR_TENSOR', 'tensors must be an array');
  return input.map((raw, i) => {
    if (raw === null || typeof raw !== 'object') {
      throw new LoomError('LOOM_ERR_TENSOR', `tensor ${i} is not an object`);
    }
    const t = raw as Record<string, unknown>;
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name.length > 256) {
      throw new LoomError('LOOM_ERR_TENSOR', `tensor ${i} has no valid name`);
    }
    if (t.dtype !== 'float32') {
      throw new LoomError(
        'LOOM_ERR_TENSOR',
        `tensor "${t.name}" has dtype ${String(t.dtype)}, only float32 is supported`,
      );
    }
    if (
      !Array.isArray(t.shape) ||
      t.shape.length > 8 ||
      !t.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)
    ) {
      throw new LoomError('LOOM_ERR_TENSOR', `tensor "${t.name}" has an invalid shape`);
    }
    if (!(t.bytes instanceof Uint8Array)) {
      throw new LoomError('LOOM_ERR_TENSOR', `tensor "${t.name}" has no byte buffer`);
    }
    const shape = t.shape as number[];
    const expected = sizeOf(shape) * 4;
    if (t.bytes.byteLength !== expected) {
      throw new LoomError(
        'LOOM_ERR_TENSOR',
        `tensor "${t.name}" has ${t.bytes.byteLength} bytes, shape [${shape}] needs ${expected}`,
      );
    }
    return { name: t.name, shape: [...shape], dtype: 'float32', data: bytesToFloats(t.bytes) };
  });
}

const BLOB_MAGIC = Buffer.from('LOOMW1\n', 'latin1');

/**
 * Weights → one binary blob: magic, 4-byte little-endian header length, JSON header of specs,
 * then the float32 values of every tensor in order (the layout of a TensorFlow.js
 * `weights.bin`, so the tail can be served as an artifact as it is).
 */
export function weightsToBlob(weights: readonly WeightTensor[]): Buffer {
  const header = Buffer.from(
    JSON.stringify(weights.map(({ name, shape, dtype }) => ({ name, shape, dtype }))),
  );
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length, 0);
  return Buffer.concat([BLOB_MAGIC, len, header, ...weights.map((w) => floatBytes(w.data))]);
}

/**
 * Where the tensor data starts in a blob made by `weightsToBlob`: after the magic, the 4-byte
 * header length and the header. `blob.subarray(blobDataOffset(blob))` is the TensorFlow.js
 * `weights.bin`, served without decoding. Throws LOOM_ERR_STORE when the blob has no Loom header
 * or its header length runs past the end.
 */
export function blobDataOffset(blob: Uint8Array): number {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (buf.length < BLOB_MAGIC.length + 4 || !buf.subarray(0, BLOB_MAGIC.length).equals(BLOB_MAGIC)) {
    throw new LoomError('LOOM_ERR_STORE', 'weights blob has no Loom header');
  }
  const offset = BLOB_MAGIC.length + 4 + buf.readUInt32LE(BLOB_MAGIC.length);
  if (offset > buf.length) throw new LoomError('LOOM_ERR_STORE', 'weights blob header runs past its end');
  return offset;
}

/** Reverse of `weightsToBlob`; throws LOOM_ERR_STORE on a corrupt blob. */
export function blobToWeights(blob: Uint8Array): WeightTensor[] {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  // The same header checks as blobDataOffset: a length running past the end is a truncated blob,
  // even when the bytes that are there happen to parse as a header.
  const dataStart = blobDataOffset(buf);
  const headerStart = BLOB_MAGIC.length + 4;
  let specs: WeightSpec[];
  try {
    specs = JSON.parse(buf.subarray(headerStart, dataStart).toString('utf8'));
  } catch (err) {
    throw new LoomError('LOOM_ERR_STORE', 'weights blob header is not valid JSON', { cause: err });
  }
  const validSpec = (s: WeightSpec): boolean =>
    s !== null &&
    typeof s === 'object' &&
    typeof s.name === 'string' &&
    Array.isArray(s.shape) &&
    s.shape.every((d) => Number.isSafeInteger(d) && d >= 0);
  if (!Array.isArray(specs) || !specs.every(validSpec)) {
    throw new LoomError('LOOM_ERR_STORE', 'weights blob header is not a list of tensor specs');
  }
  const body = buf.subarray(dataStart);
  const total = specs.reduce((n, s) => n + sizeOf(s.shape) * 4, 0);
  if (body.length !== total) {
    throw new LoomError(
      'LOOM_ERR_STORE',
      `weights blob has ${body.length} data bytes, header needs ${total}`,
    );
  }
  return splitWeightData(specs, body);
}

/** The float32 data of all tensors back to back (TensorFlow.js `weights.bin`). */
export function concatWeightData(weights: readonly WeightTensor[]): Buffer {
  return Buffer.concat(weights.map((w) => floatBytes(w.data)));
}

/**
 * Reverse of `concatWeightData`: cuts back-to-back float32 data (a `weights.bin`) into tensors of
 * `specs`, in order. One aligned copy; each tensor views its slice. LOOM_ERR_TENSOR when the byte
 * count does not match the specs.
 */
export function splitWeightData(specs: readonly WeightSpec[], bytes: Uint8Array): WeightTensor[] {
  const total = specs.reduce((n, s) => n + sizeOf(s.shape), 0);
  if (bytes.byteLength !== total * 4) {
    throw new LoomError(
      'LOOM_ERR_TENSOR',
      `weights data has ${bytes.byteLength} bytes, the specs need ${total * 4}`,
    );
  }
  const aligned = new Float32Array(total);
  new Uint8Array(aligned.buffer).set(bytes);
  let offset = 0;
  return specs.map((s) => {
    const n = sizeOf(s.shape);
    const data = aligned.subarray(offset, offset + n);
    offset += n;
    return { name: s.name, shape: [...s.shape], dtype: 'float32', data };
  });
}

/** Hex SHA-256 of bytes. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

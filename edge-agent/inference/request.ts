// Validates an Open Inference Protocol v2 infer request body against the served model.
import { LoomError } from '../../shared/errors/index.ts';
import { sizeOf } from '../../shared/tensors/index.ts';

/** Largest request body accepted, in bytes. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** A JSON number takes at least 2 bytes (`0,`), so no valid body holds more values than this. */
const MAX_VALUES = MAX_BODY_BYTES / 2;
const MAX_DEPTH = 32;

export const INPUT_NAME = 'input';
export const OUTPUT_NAMES = ['probabilities', 'class'] as const;
export type OutputName = (typeof OUTPUT_NAMES)[number];

/** Tensor datatypes accepted for the input; all are converted to float32. */
export const INPUT_DATATYPES = ['FP32', 'FP64', 'INT32', 'INT64', 'UINT8'] as const;
type InputDatatype = (typeof INPUT_DATATYPES)[number];

/** Bytes per value of each input datatype in the binary tensor data extension (little-endian). */
export const DATATYPE_BYTES: Record<InputDatatype, number> = {
  FP32: 4,
  FP64: 8,
  INT32: 4,
  INT64: 8,
  UINT8: 1,
};

/** A checked infer request: `batch` examples, row-major in `inputs`. */
export interface InferRequest {
  id?: string;
  inputs: Float32Array;
  batch: number;
  /** Outputs to return, in order (all when the request names none). */
  outputs: OutputName[];
  /** Outputs to return as raw bytes after the JSON header (binary tensor data extension). */
  binaryOutputs: ReadonlySet<OutputName>;
}

function bad(message: string): never {
  throw new LoomError('LOOM_ERR_INFERENCE_INPUT', message);
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Whether `v` is a value of `datatype` (JSON carries every datatype as a plain number). */
function fits(v: number, datatype: InputDatatype): boolean {
  switch (datatype) {
    case 'FP32':
    case 'FP64':
      // Beyond float32 range the value would silently become Infinity.
      return Number.isFinite(Math.fround(v));
    case 'INT32':
      return Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31;
    case 'INT64':
      return Number.isSafeInteger(v);
    case 'UINT8':
      return Number.isInteger(v) && v >= 0 && v <= 255;
  }
}

/** The batch size `shape` implies for `inputShape`, or undefined if it is not an accepted form. */
function batchOf(shape: readonly number[], inputShape: readonly number[]): number | undefined {
  if (shape.length === inputShape.length + 1 && sameDims(shape.slice(1), inputShape)) return shape[0];
  if (shape.length === 2 && shape[1] === sizeOf(inputShape)) return shape[0];
  if (sameDims(shape, inputShape)) return 1;
  return undefined;
}

function acceptedShapes(inputShape: readonly number[]): string {
  const forms = [`[n, ${inputShape.join(', ')}]`, `[n, ${sizeOf(inputShape)}]`, `[${inputShape.join(', ')}]`];
  return [...new Set(forms)].join(', ');
}

/**
 * Flattens `data` (a flat or nested array of numbers) into `out`. Walks with an explicit stack
 * so a deeply nested body cannot overflow the call stack. Returns how many values it found,
 * which may exceed `out.length` (the extra ones are counted, not stored).
 */
function flatten(data: unknown, datatype: InputDatatype, out: Float32Array): number {
  if (!Array.isArray(data)) bad('input "data" must be an array of numbers');
  let n = 0;
  const stack: { items: unknown[]; next: number }[] = [{ items: data as unknown[], next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next >= top.items.length) {
      stack.pop();
      continue;
    }
    const v = top.items[top.next++];
    if (Array.isArray(v)) {
      if (stack.length >= MAX_DEPTH) bad(`input "data" is nested more than ${MAX_DEPTH} levels deep`);
      stack.push({ items: v, next: 0 });
      continue;
    }
    if (typeof v !== 'number') bad(`input "data" value ${n} is not a number: ${JSON.stringify(v) ?? 'null'}`);
    if (!fits(v, datatype)) bad(`input "data" value ${n} (${v}) is not a valid ${datatype}`);
    if (n < out.length) out[n] = v;
    n++;
  }
  return n;
}

/** Whether a request or output `parameters` object is present and not an object. */
function badParameters(p: unknown): boolean {
  return p !== undefined && (p === null || typeof p !== 'object' || Array.isArray(p));
}

/**
 * Converts `count` raw little-endian values of `datatype` into `out`, checking each as the JSON
 * path does; `bytes` is exactly `count * DATATYPE_BYTES[datatype]` long.
 */
function fromBinary(bytes: Uint8Array, datatype: InputDatatype, out: Float32Array): void {
  // The tensor may start at any offset of the body; a copy gives it an aligned buffer.
  const aligned = datatype === 'UINT8' ? bytes : new Uint8Array(bytes);
  const buf = aligned.buffer;
  const at = aligned.byteOffset;
  const n = out.length;
  switch (datatype) {
    case 'UINT8':
      out.set(aligned);
      return;
    case 'FP32': {
      const v = new Float32Array(buf, at, n);
      for (let i = 0; i < n; i++) {
        if (!Number.isFinite(v[i])) bad(`input binary data value ${i} (${v[i]}) is not a valid FP32`);
      }
      out.set(v);
      return;
    }
    case 'FP64': {
      const v = new Float64Array(buf, at, n);
      for (let i = 0; i < n; i++) {
        if (!fits(v[i], 'FP64')) bad(`input binary data value ${i} (${v[i]}) is not a valid FP64`);
        out[i] = v[i];
      }
      return;
    }
    case 'INT32':
      out.set(new Int32Array(buf, at, n));
      return;
    case 'INT64': {
      const v = new BigInt64Array(buf, at, n);
      for (let i = 0; i < n; i++) {
        const x = Number(v[i]);
        if (!Number.isSafeInteger(x)) bad(`input binary data value ${i} (${v[i]}) is not a valid INT64`);
        out[i] = x;
      }
      return;
    }
  }
}

/**
 * Checks an infer request body (already JSON-parsed) for a model taking `inputShape`. Throws
 * LOOM_ERR_INFERENCE_INPUT with a message naming the field at fault.
 */
export function parseInferRequest(
  body: unknown,
  inputShape: readonly number[],
  binary?: Uint8Array,
): InferRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    bad('request body must be a JSON object');
  const req = body as Record<string, unknown>;
  if (req.id !== undefined && typeof req.id !== 'string') bad('"id" must be a string');

  if (!Array.isArray(req.inputs) || req.inputs.length !== 1) {
    bad(`"inputs" must be an array holding exactly one tensor named "${INPUT_NAME}"`);
  }
  const input = req.inputs[0] as Record<string, unknown> | null;
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    bad('"inputs"[0] must be an object');
  if (input.name !== INPUT_NAME) {
    bad(
      `input ${JSON.stringify(input.name) ?? 'without a name'} is unknown; the model takes "${INPUT_NAME}"`,
    );
  }
  const datatype = input.datatype;
  if (!INPUT_DATATYPES.includes(datatype as InputDatatype)) {
    bad(
      `datatype ${JSON.stringify(datatype) ?? 'missing'} is not supported; use ${INPUT_DATATYPES.join(', ')}`,
    );
  }
  const shape = input.shape;
  if (
    !Array.isArray(shape) ||
    shape.length === 0 ||
    shape.length > 8 ||
    !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
  ) {
    bad('input "shape" must be an array of non-negative integers');
  }
  const dims = shape as number[];
  const batch = batchOf(dims, inputShape);
  if (batch === undefined) {
    bad(`input shape [${dims.join(', ')}] does not fit the model; expected ${acceptedShapes(inputShape)}`);
  }
  if (batch < 1) bad('input shape has a batch size of 0');
  const expected = sizeOf(dims);
  if (expected > MAX_VALUES)
    bad(`input shape [${dims.join(', ')}] holds more values than a request can carry`);

  if (badParameters(input.parameters)) bad('input "parameters" must be an object');
  const binarySize = (input.parameters as Record<string, unknown> | undefined)?.binary_data_size;
  const inputs = new Float32Array(expected);
  if (binarySize !== undefined) {
    if (binary === undefined) {
      bad('input "binary_data_size" needs a binary body: send the Inference-Header-Content-Length header');
    }
    if (input.data !== undefined) bad('input has both "data" and "binary_data_size"; send one');
    if (!Number.isSafeInteger(binarySize) || (binarySize as number) < 0) {
      bad('input "binary_data_size" must be a non-negative integer');
    }
    const needs = expected * DATATYPE_BYTES[datatype as InputDatatype];
    if (binarySize !== needs) {
      bad(
        `input "binary_data_size" is ${binarySize} bytes, shape [${dims.join(', ')}] of ${datatype} needs ${needs}`,
      );
    }
    if (binary.byteLength !== needs) {
      bad(`the binary part of the body holds ${binary.byteLength} bytes, the inputs declare ${needs}`);
    }
    fromBinary(binary, datatype as InputDatatype, inputs);
  } else {
    if (binary !== undefined && binary.byteLength > 0) {
      bad(`the body has ${binary.byteLength} bytes after its JSON header that no input declares`);
    }
    const found = flatten(input.data, datatype as InputDatatype, inputs);
    if (found !== expected) {
      bad(`input "data" has ${found} values, shape [${dims.join(', ')}] needs ${expected}`);
    }
  }

  if (badParameters(req.parameters)) bad('"parameters" must be an object');
  const allBinary = (req.parameters as Record<string, unknown> | undefined)?.binary_data_output;
  if (allBinary !== undefined && typeof allBinary !== 'boolean')
    bad('"binary_data_output" must be a boolean');
  let outputs: OutputName[] = [...OUTPUT_NAMES];
  const binaryOutputs = new Set<OutputName>(allBinary ? OUTPUT_NAMES : []);
  if (req.outputs !== undefined) {
    if (!Array.isArray(req.outputs)) bad('"outputs" must be an array of {"name": ...}');
    const names = req.outputs.map((o: unknown) =>
      o && typeof o === 'object' ? (o as { name?: unknown }).name : o,
    );
    for (const name of names) {
      if (!OUTPUT_NAMES.includes(name as OutputName)) {
        bad(
          `output ${JSON.stringify(name) ?? 'without a name'} is unknown; outputs are ${OUTPUT_NAMES.join(', ')}`,
        );
      }
    }
    for (const o of req.outputs as unknown[]) {
      if (!o || typeof o !== 'object') continue;
      const params = (o as { parameters?: unknown }).parameters;
      if (badParameters(params)) bad('output "parameters" must be an object');
      const wanted = (params as Record<string, unknown> | undefined)?.binary_data;
      if (wanted === undefined) continue;
      if (typeof wanted !== 'boolean') bad('output "binary_data" must be a boolean');
      const name = (o as { name: OutputName }).name;
      if (wanted) binaryOutputs.add(name);
      else binaryOutputs.delete(name);
    }
    if (names.length > 0) outputs = [...new Set(names as OutputName[])];
  }
  return {
    ...(req.id === undefined ? {} : { id: req.id as string }),
    inputs,
    batch,
    outputs,
    binaryOutputs,
  };
}

const utf8 = new TextDecoder();

/**
 * Parses and checks a JSON infer request body as read from the wire (UTF-8; invalid sequences
 * become U+FFFD). Throws LOOM_ERR_INFERENCE_INPUT for a body that is not JSON or does not fit.
 */
export function decodeInferBody(
  bytes: Uint8Array,
  inputShape: readonly number[],
  headerLength?: string,
): InferRequest {
  let json = bytes;
  let binary: Uint8Array | undefined;
  if (headerLength !== undefined) {
    const n = /^\d{1,10}$/.test(headerLength.trim()) ? Number(headerLength) : Number.NaN;
    if (!Number.isSafeInteger(n) || n > bytes.byteLength) {
      throw new LoomError(
        'LOOM_ERR_INFERENCE_INPUT',
        `Inference-Header-Content-Length ${JSON.stringify(headerLength)} is not a byte count within the ${bytes.byteLength}-byte body`,
      );
    }
    json = bytes.subarray(0, n);
    binary = bytes.subarray(n);
  }
  let body: unknown;
  try {
    body = JSON.parse(utf8.decode(json));
  } catch (err) {
    throw new LoomError(
      'LOOM_ERR_INFERENCE_INPUT',
      `request body is not valid JSON: ${(err as Error).message}`,
    );
  }
  return parseInferRequest(body, inputShape, binary);
}

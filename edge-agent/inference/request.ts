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

/** A checked infer request: `batch` examples, row-major in `inputs`. */
export interface InferRequest {
  id?: string;
  inputs: Float32Array;
  batch: number;
  /** Outputs to return, in order (all when the request names none). */
  outputs: OutputName[];
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

/**
 * Checks an infer request body (already JSON-parsed) for a model taking `inputShape`. Throws
 * LOOM_ERR_INFERENCE_INPUT with a message naming the field at fault.
 */
export function parseInferRequest(body: unknown, inputShape: readonly number[]): InferRequest {
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

  const inputs = new Float32Array(expected);
  const found = flatten(input.data, datatype as InputDatatype, inputs);
  if (found !== expected) {
    bad(`input "data" has ${found} values, shape [${dims.join(', ')}] needs ${expected}`);
  }

  let outputs: OutputName[] = [...OUTPUT_NAMES];
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
    if (names.length > 0) outputs = [...new Set(names as OutputName[])];
  }
  return { ...(req.id === undefined ? {} : { id: req.id as string }), inputs, batch, outputs };
}

const utf8 = new TextDecoder();

/**
 * Parses and checks a JSON infer request body as read from the wire (UTF-8; invalid sequences
 * become U+FFFD). Throws LOOM_ERR_INFERENCE_INPUT for a body that is not JSON or does not fit.
 */
export function decodeInferBody(bytes: Uint8Array, inputShape: readonly number[]): InferRequest {
  let body: unknown;
  try {
    body = JSON.parse(utf8.decode(bytes));
  } catch (err) {
    throw new LoomError(
      'LOOM_ERR_INFERENCE_INPUT',
      `request body is not valid JSON: ${(err as Error).message}`,
    );
  }
  return parseInferRequest(body, inputShape);
}

// Encodes an Open Inference Protocol v2 infer response: JSON, or with the binary tensor data
// extension a JSON header followed by the raw little-endian bytes of the outputs asked as binary.
import type { InferRequest, OutputName } from './request.ts';
import type { Prediction } from './types.ts';

/** Response header giving the length of the JSON header of a binary response. */
export const HEADER_LENGTH_HEADER = 'Inference-Header-Content-Length';

/** An encoded infer response. */
export interface EncodedResponse {
  contentType: string;
  body: string | Uint8Array;
  /** Extra response headers (the JSON header length of a binary response). */
  headers: Record<string, string>;
}

/** The raw little-endian bytes of `out`: FP32 probabilities or INT64 classes. */
export function outputBytes(out: OutputName, result: Prediction): Buffer {
  if (out === 'probabilities') {
    const p = result.probabilities;
    const b = Buffer.allocUnsafe(p.length * 4);
    for (let i = 0; i < p.length; i++) b.writeFloatLE(p[i], i * 4);
    return b;
  }
  const c = result.classes;
  const b = Buffer.allocUnsafe(c.length * 8);
  for (let i = 0; i < c.length; i++) b.writeBigInt64LE(BigInt(c[i]), i * 8);
  return b;
}

/**
 * The infer response for `req` answered by `result`. JSON outputs are written directly as text:
 * typed arrays join into JSON number lists without an intermediate array of boxed numbers (the
 * outputs are finite, checked by the model server, so every value is a valid JSON number).
 * Outputs asked as binary carry `parameters.binary_data_size` in the JSON header and their bytes
 * follow it, in the order of the outputs; `Inference-Header-Content-Length` gives the header's size.
 */
export function encodeInferResponse(
  req: InferRequest,
  name: string,
  classes: number,
  result: Prediction,
): EncodedResponse {
  const binary: Buffer[] = [];
  const outputs = req.outputs.map((out) => {
    const head =
      out === 'probabilities'
        ? `{"name":"probabilities","shape":[${req.batch},${classes}],"datatype":"FP32"`
        : `{"name":"class","shape":[${req.batch},1],"datatype":"INT64"`;
    if (req.binaryOutputs.has(out)) {
      const bytes = outputBytes(out, result);
      binary.push(bytes);
      return `${head},"parameters":{"binary_data_size":${bytes.byteLength}}}`;
    }
    const data = out === 'probabilities' ? result.probabilities.join(',') : result.classes.join(',');
    return `${head},"data":[${data}]}`;
  });
  const id = req.id === undefined ? '' : `"id":${JSON.stringify(req.id)},`;
  const json = `{${id}"model_name":${JSON.stringify(name)},"model_version":"${result.version}","outputs":[${outputs.join(',')}]}`;
  if (binary.length === 0) return { contentType: 'application/json', body: json, headers: {} };
  const header = Buffer.from(json);
  return {
    contentType: 'application/octet-stream',
    body: Buffer.concat([header, ...binary]),
    headers: { [HEADER_LENGTH_HEADER]: String(header.byteLength) },
  };
}

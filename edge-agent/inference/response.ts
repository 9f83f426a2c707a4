// Encodes an Open Inference Protocol v2 infer response body.
import type { InferRequest } from './request.ts';
import type { Prediction } from './types.ts';

/**
 * The JSON infer response for `req` answered by `result`, written directly as text: typed arrays
 * join into JSON number lists without an intermediate array of boxed numbers (the outputs are
 * finite, checked by the model server, so every value is a valid JSON number).
 */
export function encodeInferResponse(
  req: InferRequest,
  name: string,
  classes: number,
  result: Prediction,
): string {
  const outputs = req.outputs.map((out) =>
    out === 'probabilities'
      ? `{"name":"probabilities","shape":[${req.batch},${classes}],"datatype":"FP32","data":[${result.probabilities.join(',')}]}`
      : `{"name":"class","shape":[${req.batch},1],"datatype":"INT64","data":[${result.classes.join(',')}]}`,
  );
  const id = req.id === undefined ? '' : `"id":${JSON.stringify(req.id)},`;
  return `{${id}"model_name":${JSON.stringify(name)},"model_version":"${result.version}","outputs":[${outputs.join(',')}]}`;
}

// One infer call from body bytes to the response body, shared by the Hono app and the Node fast
// path: the checks in the order the protocol answers them, the prediction, the serving stats.
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import type { ModelServer } from './model-server.ts';
import { decodeInferBody, type InferRequest } from './request.ts';
import { type EncodedResponse, encodeInferResponse } from './response.ts';
import type { RetirementBook } from './retirements.ts';
import { applyRetirement, assertServing, type ServingRevocation } from './serving-rules.ts';
import type { ServingStats } from './serving-stats.ts';
import { runInTurn } from './turns.ts';
import type { Prediction } from './types.ts';

/**
 * Bodies up to this size are parsed in the turn that read them; larger ones take a turn of their
 * own (a 16 MiB body is a few hundred ms of parsing), so concurrent large requests parse one
 * after another with the event loop between them.
 */
export const INLINE_PARSE_BYTES = 256 * 1024;

/** What an infer call needs from the server around it. */
export interface InferContext {
  revocation: () => ServingRevocation | undefined;
  serveWhenRevoked: boolean;
  stats?: ServingStats;
  retirements?: RetirementBook;
}

/** One infer call: the model named in the path, how to read the body, where headers go. */
export interface InferCall {
  name: string;
  version: number | undefined;
  /** Reads the whole body (under the size limit); called once the model is resolved. */
  body: () => Promise<Uint8Array>;
  /** The `Inference-Header-Content-Length` request header, if sent (binary tensor data). */
  headerLength: string | undefined;
  setHeader: (name: string, value: string) => void;
}

/** The answer of an infer call: the body, its content type and extra headers. */
export type InferAnswer = EncodedResponse;

/** What one infer call resolved to: the checked request and the prediction that answers it. */
export interface InferOutcome {
  req: InferRequest;
  result: Prediction;
  /** Classes of the version that answered (the width of `probabilities`). */
  classes: number;
}

/** One infer call whatever its transport: the model, how to get its request, where headers go. */
export interface CoreCall {
  name: string;
  version: number | undefined;
  /** Reads and checks the request against the resolved model's input shape. */
  parse: (inputShape: readonly number[]) => InferRequest | Promise<InferRequest>;
  setHeader: (name: string, value: string) => void;
}

/**
 * The transport-free infer call over `server`: refuses a revoked agent and retired versions,
 * resolves the model first (an unknown model is a 404 whatever the body holds; a stored version
 * not loaded is loaded now), checks the request against it, and predicts against the version
 * resolved (a swap meanwhile does not change the answer's shape), counting serving stats.
 */
export function createInferCore(
  server: ModelServer,
  ctx: InferContext,
): (call: CoreCall) => Promise<InferOutcome> {
  return async ({ name, version, parse, setHeader }) => {
    assertServing(ctx.revocation() !== undefined, ctx.serveWhenRevoked);
    if (version !== undefined) applyRetirement(setHeader, ctx.retirements, name, version);
    const served = await server.find(name, version);
    if (version === undefined) applyRetirement(setHeader, ctx.retirements, name, served.version);
    const req = await parse(served.inputShape);
    const began = performance.now();
    let result: Prediction;
    try {
      result = await server.predict(name, served.version, req.inputs, req.batch);
    } catch (err) {
      // A failure of the version itself counts against its health; the caller's bad input does not.
      const serverSide = !isLoomError(err) || err.httpStatus >= 500;
      if (serverSide) ctx.stats?.record(name, served.version, performance.now() - began, true);
      throw err;
    }
    ctx.stats?.record(name, result.version, performance.now() - began, false);
    if (result.classes.length !== req.batch) {
      throw new LoomError('LOOM_ERR_INTERNAL', `model "${name}" answered ${result.classes.length} rows`);
    }
    return { req, result, classes: served.classes };
  };
}

/** The REST infer handler over `server`: `createInferCore` with the body read, parsed and answered as OIP v2 JSON or binary. */
export function createInferHandler(
  server: ModelServer,
  ctx: InferContext,
): (call: InferCall) => Promise<InferAnswer> {
  const core = createInferCore(server, ctx);
  return async ({ name, version, body, headerLength, setHeader }) => {
    const { req, result, classes } = await core({
      name,
      version,
      setHeader,
      parse: async (inputShape) => {
        const bytes = await body();
        return bytes.byteLength > INLINE_PARSE_BYTES
          ? runInTurn(() => decodeInferBody(bytes, inputShape, headerLength))
          : decodeInferBody(bytes, inputShape, headerLength);
      },
    });
    return encodeInferResponse(req, name, classes, result);
  };
}

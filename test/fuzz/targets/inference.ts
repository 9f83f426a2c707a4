// Fuzz targets of local inference: parseInferRequest on any body for any input shape, and the
// infer (and every other) route of createInferenceApp over a real model server with small models
// loaded. A bad request is a LOOM_ERR_INFERENCE_INPUT (400) or a 404/503 with an OIP error body,
// never a 500 but for a model whose float32 output overflowed; a good one gives probabilities and
// classes of the right shape and range.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as fc from 'fast-check';
import type { Hono } from 'hono';
import { createInferenceApp, ModelServer } from '../../../edge-agent/inference/index.ts';
import {
  INPUT_DATATYPES,
  INPUT_NAME,
  OUTPUT_NAMES,
  parseInferRequest,
} from '../../../edge-agent/inference/request.ts';
import { type LocalModelStore, openLocalModelStore } from '../../../edge-agent/store/index.ts';
import { initCompute } from '../../../shared/compute/index.ts';
import { ERROR_CODES } from '../../../shared/errors/codes.ts';
import { createLogger } from '../../../shared/log/index.ts';
import { initialWeights, type ModelArchitecture } from '../../../shared/models/index.ts';
import { sizeOf } from '../../../shared/tensors/index.ts';
import { mutated, mutatedBytes } from '../harness/mutate.ts';
import { invariant, outcomeOf } from '../harness/outcome.ts';
import { defineTarget } from '../harness/target.ts';
import { makeTempDir, removeTempDir } from '../harness/temp-dirs.ts';
import { anyString, anyValue, jsonValue } from '../harness/values.ts';

type Datatype = (typeof INPUT_DATATYPES)[number];

/** A value of `datatype`, at its edges now and then. */
function datatypeValue(datatype: Datatype): fc.Arbitrary<number> {
  switch (datatype) {
    case 'FP32':
    case 'FP64':
      return fc.oneof(
        fc.float({ noNaN: true, noDefaultInfinity: true }),
        fc.constantFrom(0, 1, -1, 3.4e38, -3.4e38, 1e-45),
      );
    case 'INT32':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'INT64':
      return fc.oneof(fc.integer(), fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER));
    case 'UINT8':
      return fc.integer({ min: 0, max: 255 });
  }
}

/** `flat` values nested by `shape` (row-major), as JSON clients send tensors. */
function nest(flat: readonly number[], shape: readonly number[]): unknown {
  if (shape.length <= 1) return [...flat];
  const step = flat.length / shape[0];
  return Array.from({ length: shape[0] }, (_, i) =>
    nest(flat.slice(i * step, (i + 1) * step), shape.slice(1)),
  );
}

/** Valid infer bodies for a model taking `inputShape`: every accepted shape form, flat or nested data, outputs named or not. */
export function inferBody(inputShape: readonly number[]): fc.Arbitrary<Record<string, unknown>> {
  const size = sizeOf(inputShape);
  return fc
    .record({
      batch: fc.integer({ min: 1, max: 3 }),
      form: fc.constantFrom('batched', 'flat-batched', 'single'),
      datatype: fc.constantFrom(...INPUT_DATATYPES),
      nested: fc.boolean(),
      id: fc.option(anyString(16), { nil: undefined }),
      outputs: fc.option(
        fc.array(
          fc.constantFrom(...OUTPUT_NAMES).map((name) => ({ name })),
          { maxLength: 3 },
        ),
        { nil: undefined },
      ),
    })
    .chain(({ batch, form, datatype, nested, id, outputs }) => {
      const n = form === 'single' ? 1 : batch;
      const shape =
        form === 'batched' ? [n, ...inputShape] : form === 'flat-batched' ? [n, size] : [...inputShape];
      return fc.array(datatypeValue(datatype), { minLength: n * size, maxLength: n * size }).map((flat) => ({
        ...(id === undefined ? {} : { id }),
        inputs: [{ name: INPUT_NAME, shape, datatype, data: nested ? nest(flat, shape) : flat }],
        ...(outputs === undefined ? {} : { outputs }),
      }));
    });
}

/** Every number in `data`, depth first (the order parseInferRequest reads them). */
function flatNumbers(data: unknown): number[] {
  return Array.isArray(data) ? data.flatMap(flatNumbers) : [data as number];
}

const inputShapeArb = () => fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 });

function checkParse({ body, inputShape }: { body: unknown; inputShape: number[] }): void {
  const out = outcomeOf(() => parseInferRequest(body, inputShape), ['LOOM_ERR_INFERENCE_INPUT']);
  if (!out.ok) return;
  const req = out.value;
  invariant(Number.isSafeInteger(req.batch) && req.batch >= 1, `batch ${req.batch}`);
  invariant(
    req.inputs instanceof Float32Array && req.inputs.length === req.batch * sizeOf(inputShape),
    'inputs length is not batch × input size',
  );
  invariant(
    req.outputs.length >= 1 && new Set(req.outputs).size === req.outputs.length,
    'outputs empty or repeated',
  );
  invariant(
    req.outputs.every((o) => (OUTPUT_NAMES as readonly string[]).includes(o)),
    'unknown output',
  );
  const b = body as { id?: unknown; inputs: { data: unknown }[] };
  invariant(req.id === b.id, 'id changed');
  const values = flatNumbers(b.inputs[0].data);
  invariant(
    values.length === req.inputs.length && values.every((v, i) => Object.is(Math.fround(v), req.inputs[i])),
    'inputs are not the float32 values of data in order',
  );
}

const MODELS: { name: string; architecture: ModelArchitecture; versions: number[] }[] = [
  {
    name: 'fuzz-flat',
    architecture: { kind: 'mlp', inputShape: [4], layers: [5, 3], activation: 'tanh' },
    versions: [1, 2, 3],
  },
  { name: 'fuzz-grid', architecture: { kind: 'logistic', inputShape: [2, 3], classes: 2 }, versions: [1] },
];

interface InferenceContext {
  dir: string;
  store: LocalModelStore;
  server: ModelServer;
  app: Hono;
}

async function createInferenceContext(): Promise<InferenceContext> {
  await initCompute();
  const dir = makeTempDir('inference');
  const store = await openLocalModelStore(join(dir, 'store'));
  for (const m of MODELS) {
    for (const version of m.versions) {
      const { weights } = await initialWeights(m.architecture);
      await store.put({ name: m.name, version, architecture: m.architecture, weights });
    }
  }
  // Room for every stored version, so a version loaded on demand stays and the tensor count is steady.
  const server = new ModelServer(store, { maxLoadedVersions: 8 });
  for (const m of MODELS) for (const v of [...m.versions].reverse()) await server.load(m.name, v);
  const app = createInferenceApp(server, { log: createLogger('silent') });
  return { dir, store, server, app };
}

interface InferenceCall {
  method: string;
  path: string;
  contentType?: string;
  body?: string | Uint8Array;
}

const versionSegment = () =>
  fc.constantFrom('1', '2', '3', '4', '0', '01', '-1', '1.5', '1e0', '9007199254740993', 'latest', '%20');
const nameSegment = () =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('fuzz-flat', 'fuzz-grid') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%00', '..', 'a'.repeat(300)) },
  );

function inferCall(): fc.Arbitrary<InferenceCall> {
  const valid = fc
    .constantFrom(...MODELS)
    .chain((m) => inferBody((m.architecture as { inputShape: number[] }).inputShape));
  const body = fc.oneof(
    { weight: 3, arbitrary: valid.map((v) => JSON.stringify(v)) },
    {
      weight: 5,
      arbitrary: mutated(valid, { replacement: anyValue(), maxMutations: 3 }).map(
        (v) => JSON.stringify(v) ?? '',
      ),
    },
    { weight: 1, arbitrary: mutatedBytes(valid.map((v) => Buffer.from(JSON.stringify(v)))) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        jsonValue(3).map((v) => JSON.stringify(v)),
        fc.uint8Array({ maxLength: 32 }),
        fc.constantFrom(
          '',
          '{',
          '[]',
          'null',
          '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":' +
            '['.repeat(100_000) +
            ']'.repeat(100_000) +
            '}]}',
        ),
      ),
    },
  );
  return fc.record({
    method: fc.oneof(
      { weight: 15, arbitrary: fc.constant('POST') },
      { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE') },
    ),
    path: fc.oneof(
      { weight: 3, arbitrary: nameSegment().map((n) => `/v2/models/${n}/infer`) },
      {
        weight: 2,
        arbitrary: fc
          .tuple(nameSegment(), versionSegment())
          .map(([n, v]) => `/v2/models/${n}/versions/${v}/infer`),
      },
    ),
    contentType: fc.option(fc.constantFrom('application/json', 'text/plain'), { nil: undefined }),
    body,
  });
}

function otherCall(): fc.Arbitrary<InferenceCall> {
  return fc.record({
    method: fc.constantFrom('GET', 'GET', 'GET', 'POST'),
    path: fc.oneof(
      fc.constantFrom('/v2', '/v2/health/live', '/v2/health/ready', '/v2/', '/', '/v2/models'),
      nameSegment().map((n) => `/v2/models/${n}`),
      nameSegment().map((n) => `/v2/models/${n}/ready`),
      fc.tuple(nameSegment(), versionSegment()).map(([n, v]) => `/v2/models/${n}/versions/${v}`),
      fc.tuple(nameSegment(), versionSegment()).map(([n, v]) => `/v2/models/${n}/versions/${v}/ready`),
    ),
  });
}

/** Tensors the loaded models hold; anything above that after a call is a leak. */
function modelTensors(server: ModelServer): number {
  return server.list().reduce((n, s) => n + s.model.weights.length, 0);
}

const STATUSES = [200, 400, 404, 405, 413, 500, 503];

async function checkCall(call: InferenceCall, ctx: InferenceContext): Promise<void> {
  const leakBefore = tf.memory().numTensors - modelTensors(ctx.server);
  const withBody = call.method !== 'GET' && call.body !== undefined;
  const res = await ctx.app.request(call.path, {
    method: call.method,
    headers: call.contentType ? { 'content-type': call.contentType } : {},
    ...(withBody ? { body: call.body as RequestInit['body'] } : {}),
  });
  const text = await res.text();
  const what = `${call.method} ${call.path} → ${res.status}`;
  invariant(STATUSES.includes(res.status), `${what}: ${text.slice(0, 300)}`);
  invariant(tf.memory().numTensors - modelTensors(ctx.server) === leakBefore, `${what} leaked tensors`);
  invariant((res.headers.get('content-type') ?? '').startsWith('application/json'), `${what} is not JSON`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`${what} sent invalid JSON: ${text.slice(0, 200)}`);
  }
  if (res.status >= 400) {
    if (res.status === 503 && 'ready' in json) return; // /v2/health/ready when nothing is loaded
    // The one 500 a route may give: a float32 overflow inside the model made its output
    // non-finite. That is the model's fault, counted as a serving error for rollout health.
    if (res.status === 500) {
      invariant(json.code === 'LOOM_ERR_MODEL_OUTPUT', `${what}: ${text.slice(0, 300)}`);
      invariant(call.path.endsWith('/infer'), `${what} is not an inference`);
      return;
    }
    invariant(
      typeof json.error === 'string' && typeof json.code === 'string' && json.code in ERROR_CODES,
      `${what} is not an OIP error: ${text.slice(0, 200)}`,
    );
    return;
  }
  if (!call.path.endsWith('/infer')) return;
  const name = decodeURIComponent(call.path.split('/')[3]);
  const model = MODELS.find((m) => m.name === name);
  invariant(model, `${what} answered for an unknown model`);
  const classes =
    model.architecture.kind === 'logistic'
      ? model.architecture.classes
      : (model.architecture as { layers: number[] }).layers.at(-1)!;
  const request = JSON.parse(String(call.body)) as { id?: string };
  // The route must read the body as the parser does.
  const { batch } = parseInferRequest(request, (model.architecture as { inputShape: number[] }).inputShape);
  invariant(
    json.model_name === name && typeof json.model_version === 'string',
    `${what} names another model`,
  );
  invariant(json.id === request.id, `${what} changed the id`);
  for (const out of json.outputs as { name: string; shape: number[]; data: number[] }[]) {
    if (out.name === 'probabilities') {
      invariant(
        out.shape[0] === batch && out.shape[1] === classes && out.data.length === batch * classes,
        `${what}: probabilities of shape [${out.shape}]`,
      );
      for (let i = 0; i < batch; i++) {
        const row = out.data.slice(i * classes, (i + 1) * classes);
        // NaN only from non-finite inputs: float32 overflow inside the model is the model's, not the server's.
        if (row.some((p) => p === null)) continue;
        invariant(
          row.every((p) => p >= 0 && p <= 1) && Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-3,
          `${what}: row ${i} is not a distribution`,
        );
      }
    } else {
      invariant(
        out.shape[0] === batch && out.data.length === batch,
        `${what}: classes of shape [${out.shape}]`,
      );
      invariant(
        out.data.every((c) => Number.isInteger(c) && c >= 0 && c < classes),
        `${what}: class out of range`,
      );
    }
  }
}

export const inferenceTargets = [
  defineTarget({
    name: 'inference.parse',
    description:
      'parseInferRequest on any and almost-valid bodies for any input shape: LOOM_ERR_INFERENCE_INPUT or a consistent request',
    shortRuns: 300,
    input: () =>
      inputShapeArb().chain((inputShape) =>
        fc.record({
          inputShape: fc.constant(inputShape),
          body: fc.oneof(
            { weight: 2, arbitrary: inferBody(inputShape) },
            {
              weight: 5,
              arbitrary: mutated(inferBody(inputShape), { replacement: anyValue(), maxMutations: 3 }),
            },
            { weight: 1, arbitrary: jsonValue(4) },
          ),
        }),
      ),
    check: checkParse,
  }),
  defineTarget({
    name: 'inference.route',
    description:
      'the OIP v2 routes of createInferenceApp with loaded models: OIP errors (500 only for a model whose output overflowed), right-shaped predictions, no leaked tensors',
    shortRuns: 200,
    caseTimeoutMs: 15_000,
    input: () => fc.oneof({ weight: 4, arbitrary: inferCall() }, { weight: 1, arbitrary: otherCall() }),
    setup: createInferenceContext,
    teardown: async (ctx: InferenceContext) => {
      ctx.server.dispose();
      await ctx.store.close();
      removeTempDir(ctx.dir);
    },
    check: checkCall,
  }),
];

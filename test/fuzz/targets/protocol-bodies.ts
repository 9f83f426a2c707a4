// One arbitrary of valid bodies per protocol message type: what the codec must carry unchanged.
// A new message type needs one entry here: the mapped type makes a missing one a compile error,
// and protocol.test.ts fails when MESSAGE_TYPES names a type without one.
import * as fc from 'fast-check';
import { type ModelArchitecture, parseArchitecture } from '../../../shared/models/index.ts';
import type { DatasetSummary, MessageBodies, MessageType, ModelRef } from '../../../shared/protocol/index.ts';
import {
  encodeTensorBytes,
  HEALTH_LATENCY_BUCKETS_MS,
  HOLDOUT_DEFAULTS,
  MAX_EXAMPLES_PER_UPDATE,
  SUMMARY_LIMITS,
} from '../../../shared/protocol/index.ts';
import type { WeightTensor } from '../../../shared/tensors/index.ts';
import { jsonValue, textUpTo } from '../harness/values.ts';

/** The codec's id and name patterns (shared/protocol/codec.ts). */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const protocolId = (): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.stringMatching(ID_PATTERN) },
    { weight: 1, arbitrary: fc.constant('i'.repeat(128)) },
  );
export const modelName = (): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.stringMatching(NAME_PATTERN) },
    { weight: 1, arbitrary: fc.constant('m'.repeat(128)) },
  );

/** A whole number in [min, max], small ones most often, the bounds sometimes. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min, max: Math.min(max, min + 100) }) },
    { weight: 2, arbitrary: fc.integer({ min, max }) },
    { weight: 1, arbitrary: fc.constantFrom(min, max) },
  );
}

/** A finite double in [min, max] that is not -0 (msgpack carries -0 as 0). */
export function finiteNumber(
  min = -Number.MAX_VALUE,
  max = Number.MAX_VALUE,
  minExcluded = false,
): fc.Arbitrary<number> {
  return fc
    .double({ min, max, minExcluded, noNaN: true, noDefaultInfinity: true })
    .filter((x) => !Object.is(x, -0));
}

/** Float32 tensors with small shapes, any bit pattern (NaN payloads, -0, infinities). */
export function weightTensors(maxTensors = 3): fc.Arbitrary<WeightTensor[]> {
  const tensor = fc
    .record({
      name: fc.oneof(fc.stringMatching(/^[a-z_]{1,8}(\/[a-z_]{1,8}){0,2}$/), textUpTo(256, 1)),
      shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }),
    })
    .chain(({ name, shape }) => {
      const size = shape.reduce((n, d) => n * d, 1);
      return fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), { minLength: size, maxLength: size }).map(
        (bits): WeightTensor => ({
          name,
          shape,
          dtype: 'float32',
          data: new Float32Array(Uint32Array.from(bits).buffer),
        }),
      );
    });
  return fc.array(tensor, { maxLength: maxTensors });
}

/** Bytes of a binary field: the encoding of real tensors, or any bytes (the codec does not look inside). */
const tensorField = (): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    weightTensors().map((w) => new Uint8Array(encodeTensorBytes(w))),
    fc.uint8Array({ maxLength: 64 }),
  );

const activation = () =>
  fc.constantFrom('relu', 'tanh', 'sigmoid', 'elu', 'selu', 'linear') as fc.Arbitrary<'relu'>;
const inputShape = () => fc.array(wholeNumber(1, 1 << 12), { minLength: 1, maxLength: 3 });

const MAX_BUILDABLE_PARAMETERS = 1 << 24;

/** Weights of dense layers of `units` after `inputShape`, as architectureParamCount counts them. */
function parameterCount(shape: readonly number[], units: readonly number[]): number {
  let inputs = shape.reduce((n, d) => n * d, 1);
  let params = 0;
  for (const u of units) {
    params += inputs * u + u;
    inputs = u;
  }
  return params;
}

/** Architectures as `parseArchitecture` returns them (so they compare equal after a decode). */
export function architecture(): fc.Arbitrary<ModelArchitecture> {
  const mlp = fc
    .record({
      kind: fc.constant('mlp' as const),
      inputShape: inputShape(),
      layers: fc
        .tuple(fc.array(wholeNumber(1, 256), { maxLength: 3 }), wholeNumber(2, 256))
        .map(([hidden, classes]) => [...hidden, classes]),
      activation: activation(),
    })
    // Small enough to build, should a test ever build one; the codec itself sets no size limit.
    .filter((a) => parameterCount(a.inputShape, a.layers) <= MAX_BUILDABLE_PARAMETERS);
  const logistic = fc
    .record({
      kind: fc.constant('logistic' as const),
      inputShape: inputShape(),
      classes: wholeNumber(2, 1024),
    })
    .filter((a) => parameterCount(a.inputShape, [a.classes]) <= MAX_BUILDABLE_PARAMETERS);
  const tfjs = fc.record({
    kind: fc.constant('tfjs' as const),
    topology: fc
      .record({
        class_name: textUpTo(32, 1),
        config: fc.dictionary(fc.string({ maxLength: 8 }), jsonValue(2), {
          maxKeys: 4,
          noNullPrototype: true,
        }),
      })
      .map((t) => JSON.parse(JSON.stringify(t)) as Record<string, unknown>),
  });
  // Only what parseArchitecture accepts (its initializer and dimension checks run at decode too).
  const valid = tfjs.filter((a) => {
    try {
      parseArchitecture(a);
      return true;
    } catch {
      return false;
    }
  });
  return fc.oneof(mlp, logistic, valid);
}

const modelRef = (): fc.Arbitrary<ModelRef> =>
  fc.record({ name: modelName(), version: wholeNumber(1), architecture: architecture() });

/** Metric names are free text up to 64 units; "__proto__" is left out (msgpack-lite cannot carry it as a key). */
const metrics = () =>
  fc.dictionary(
    textUpTo(64, 0).filter((k) => k !== '__proto__'),
    finiteNumber(),
    { maxKeys: 32, noNullPrototype: true },
  );

const SHA256 = /^[0-9a-f]{64}$/;

/** What an agent says about its data in hello: counts, labels, and per-group feature statistics or null. */
function datasetSummary(): fc.Arbitrary<DatasetSummary> {
  const count = () => wholeNumber(0);
  const stats = fc.integer({ min: 1, max: 6 }).chain((groups) => {
    const column = () => fc.array(finiteNumber(), { minLength: groups, maxLength: groups });
    return fc.record({
      groupSize: wholeNumber(1, 1 << 30),
      groups: fc.constant(groups),
      min: column(),
      max: column(),
      mean: column(),
    });
  });
  return fc.record({
    examples: wholeNumber(0, MAX_EXAMPLES_PER_UPDATE),
    featureShape: fc.array(wholeNumber(1), { minLength: 1, maxLength: 8 }),
    features: count(),
    labels: fc.array(
      fc.record({ value: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), count: count() }),
      {
        maxLength: Math.min(8, SUMMARY_LIMITS.labels),
      },
    ),
    otherLabels: fc.record({ distinct: count(), examples: count() }),
    nonFiniteValues: count(),
    featureStats: fc.option(stats, { nil: null }),
  });
}

/** The chunk hashes of a v2 deployment manifest: one per chunk of `chunkBytes` of `size`. */
function chunkManifest(): fc.Arbitrary<{ size: number; chunkBytes: number; chunks: string[] }> {
  return fc
    .record({
      size: fc.integer({ min: 0, max: 1 << 20 }),
      chunkBytes: fc.integer({ min: 4096, max: 1 << 20 }),
    })
    .chain(({ size, chunkBytes }) =>
      fc
        .array(fc.stringMatching(SHA256), {
          minLength: Math.max(1, Math.ceil(size / chunkBytes)),
          maxLength: Math.max(1, Math.ceil(size / chunkBytes)),
        })
        .map((chunks) => ({ size, chunkBytes, chunks })),
    );
}

export const BODY_ARBITRARIES: { [T in MessageType]: fc.Arbitrary<MessageBodies[T]> } = {
  hello: fc.record({
    protocolVersions: fc.array(fc.oneof(wholeNumber(1, 3), fc.maxSafeInteger(), fc.integer()), {
      maxLength: 16,
    }),
    agentVersion: textUpTo(64, 1),
    backend: textUpTo(64, 1),
    models: fc.array(fc.record({ name: modelName(), version: wholeNumber(1) }), { maxLength: 6 }),
    dataset: datasetSummary(),
  }),
  welcome: fc.record({
    protocolVersion: wholeNumber(1),
    agentId: protocolId(),
    heartbeatIntervalMs: wholeNumber(10),
    chunkBytes: wholeNumber(1024, 2 ** 31 - 1),
  }),
  train: fc.record(
    {
      taskId: protocolId(),
      jobId: protocolId(),
      round: wholeNumber(1),
      model: modelRef(),
      hyper: fc.record({
        epochs: wholeNumber(1, 1000),
        batchSize: wholeNumber(1, 1 << 16),
        learningRate: finiteNumber(0, 100, true),
      }),
      weights: tensorField(),
      holdoutFraction: finiteNumber(0, HOLDOUT_DEFAULTS.maxFraction),
    },
    { requiredKeys: ['taskId', 'jobId', 'round', 'model', 'hyper', 'weights'] },
  ),
  evaluate: fc.record({
    taskId: protocolId(),
    evaluationId: protocolId(),
    model: modelRef(),
    weights: tensorField(),
    holdoutFraction: finiteNumber(0, HOLDOUT_DEFAULTS.maxFraction),
  }),
  'evaluate-result': fc.record({
    taskId: protocolId(),
    evaluationId: protocolId(),
    numExamples: wholeNumber(0, MAX_EXAMPLES_PER_UPDATE),
    loss: finiteNumber(0),
    accuracy: finiteNumber(0, 1),
    confusion: fc.array(fc.array(wholeNumber(0), { maxLength: 4 }), { maxLength: 4 }),
    evalMs: finiteNumber(0),
  }),
  'train-result': fc.record({
    taskId: protocolId(),
    jobId: protocolId(),
    round: wholeNumber(1),
    numExamples: wholeNumber(0, MAX_EXAMPLES_PER_UPDATE),
    metrics: metrics(),
    update: tensorField(),
    trainMs: finiteNumber(0),
  }),
  'task-error': fc.record(
    { taskId: protocolId(), code: textUpTo(64, 1), message: textUpTo(4096, 1), permanent: fc.boolean() },
    { requiredKeys: ['taskId', 'code', 'message'] },
  ),
  cancel: fc.record({ taskId: protocolId() }),
  deploy: fc.record(
    {
      model: modelRef(),
      weights: tensorField(),
      sha256: fc.stringMatching(SHA256),
      manifest: chunkManifest(),
      signature: fc.uint8Array({ maxLength: 512 }),
      signerCertificate: textUpTo(16_384, 1),
    },
    { requiredKeys: ['model', 'weights', 'sha256', 'signature', 'signerCertificate'] },
  ),
  'deploy-ack': fc
    .record({
      name: modelName(),
      version: wholeNumber(1),
      ok: fc.boolean(),
      error: fc.option(textUpTo(4096, 1), { nil: undefined }),
      code: fc.option(fc.stringMatching(/^LOOM_ERR_[A-Z_]{1,20}$/), { nil: undefined }),
    })
    .map(({ error, code, ...rest }) => ({
      ...rest,
      ...(error === undefined ? {} : { error }),
      ...(code === undefined ? {} : { code }),
    })),
  activate: fc.record(
    {
      model: modelRef(),
      sha256: fc.stringMatching(SHA256),
      manifest: chunkManifest(),
      signature: fc.uint8Array({ maxLength: 512 }),
      signerCertificate: textUpTo(16_384, 1),
    },
    { requiredKeys: ['model', 'sha256', 'signature', 'signerCertificate'] },
  ),
  renew: fc.record({ csr: textUpTo(16_384, 1) }),
  renewed: fc.record({ certificate: textUpTo(16_384, 1), notAfter: textUpTo(64, 1) }),
  // One chunk as a frame carries it; whether chunks fit together is the assembler's to check.
  chunk: fc.integer({ min: 1, max: 1 << 20 }).chain((count) =>
    fc.record({
      payload: fc.stringMatching(SHA256),
      index: fc.integer({ min: 0, max: count - 1 }),
      count: fc.constant(count),
      size: wholeNumber(0),
      sha256: fc.stringMatching(SHA256),
      bytes: fc.uint8Array({ maxLength: 64 }),
    }),
  ),
  'serving-health': fc.record({
    intervalMs: wholeNumber(0, 86_400_000),
    versions: fc.array(
      fc
        .record({
          name: modelName(),
          version: wholeNumber(1),
          latency: fc.array(fc.integer({ min: 0, max: 1000 }), {
            minLength: HEALTH_LATENCY_BUCKETS_MS.length + 1,
            maxLength: HEALTH_LATENCY_BUCKETS_MS.length + 1,
          }),
        })
        .chain(({ latency, ...rest }) => {
          const requests = latency.reduce((a, b) => a + b, 0);
          return fc
            .integer({ min: 0, max: requests })
            .map((errors) => ({ ...rest, requests, errors, latency }));
        }),
      { maxLength: 4 },
    ),
  }),
  retirement: fc.record({
    name: modelName(),
    version: wholeNumber(1),
    successor: wholeNumber(1),
    deprecatedAt: fc
      .date({ min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true })
      .map((d) => d.toISOString()),
    sunsetAt: fc
      .date({ min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true })
      .map((d) => d.toISOString()),
  }),
  error: fc.record({ code: textUpTo(64, 1), message: textUpTo(4096, 1) }),
};

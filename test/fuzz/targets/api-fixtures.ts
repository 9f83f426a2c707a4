// What generated API requests are made of: a small TensorFlow.js topology, valid bodies of every
// route that takes one (to be mutated), and the placeholders a request carries for values only
// the running context knows (an enrollment token, a CSR, a fixture token id, the last created id).
import * as tf from '@tensorflow/tfjs';
import * as fc from 'fast-check';
import { ENGINE_NAMES } from '../../../coordinator/aggregation/index.ts';
import { modelTopology } from '../../../shared/models/index.ts';
import { textUpTo } from '../harness/values.ts';
import { NAME_PATTERN, wholeNumber } from './protocol-bodies.ts';

/** Replaced by the running context before a request is sent. */
export const PLACEHOLDER = {
  enrollmentToken: '{{ENROLLMENT_TOKEN}}',
  csr: '{{CSR}}',
  /** The `id` (or `agentId`, or `name`) of the last 2xx response in the same case. */
  lastId: '{{LAST_ID}}',
  tokenId: (caller: 'admin' | 'operator' | 'viewer' | 'revoked') => `{{TOKEN_ID:${caller}}}`,
} as const;

/**
 * The model size limit of the fuzzed API (`maxModelBytes`): 16 MiB of weights, so a mutated shape
 * is refused before it is built rather than build a model of up to a gigabyte (the default).
 */
export const FUZZ_MAX_MODEL_BYTES = 16 * 1024 * 1024;

let topology: Record<string, unknown> | undefined;

/** The topology of a 3-input, 2-class dense model named `fuzz_dense` (built once, then disposed). */
export function tinyTopology(): Record<string, unknown> {
  if (!topology) {
    const model = tf.sequential({
      layers: [tf.layers.dense({ name: 'fuzz_dense', units: 2, inputShape: [3], activation: 'softmax' })],
    });
    topology = modelTopology(model);
    model.dispose();
  }
  return JSON.parse(JSON.stringify(topology)) as Record<string, unknown>;
}

/** The weightsManifest of `tinyTopology` and base64 weights.bin bytes for it. */
function tinyUpload(): fc.Arbitrary<{ manifest: unknown; weights: string }> {
  return fc
    .array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 8, maxLength: 8 })
    .map((values) => ({
      manifest: [
        {
          paths: ['weights.bin'],
          weights: [
            { name: 'fuzz_dense/kernel', shape: [3, 2], dtype: 'float32' },
            { name: 'fuzz_dense/bias', shape: [2], dtype: 'float32' },
          ],
        },
      ],
      weights: Buffer.from(new Float32Array(values).buffer).toString('base64'),
    }));
}

const modelNames = () =>
  fc.oneof(
    { weight: 3, arbitrary: fc.stringMatching(NAME_PATTERN) },
    { weight: 1, arbitrary: fc.constantFrom('fuzz-mlp', 'fuzz-tfjs', 'no-such-model') },
  );

/** Architectures small enough to build in a few milliseconds (mutations push them past the limits). */
function smallArchitecture(): fc.Arbitrary<Record<string, unknown>> {
  const inputShape = fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 2 });
  const inputs = fc.oneof(
    inputShape.map((s) => ({ inputShape: s })),
    fc.integer({ min: 1, max: 16 }).map((n) => ({ inputs: n })),
  );
  const mlp = fc
    .record({
      inputs,
      layers: fc.tuple(
        fc.array(fc.integer({ min: 1, max: 16 }), { maxLength: 2 }),
        fc.integer({ min: 2, max: 8 }),
      ),
      activation: fc.option(fc.constantFrom('relu', 'tanh', 'sigmoid', 'elu', 'selu', 'linear'), {
        nil: undefined,
      }),
    })
    .map(({ inputs, layers, activation }) => ({
      kind: 'mlp',
      ...inputs,
      layers: [...layers[0], layers[1]],
      ...(activation === undefined ? {} : { activation }),
    }));
  const logistic = fc
    .record({ inputs, classes: fc.integer({ min: 2, max: 8 }) })
    .map(({ inputs, classes }) => ({ kind: 'logistic', ...inputs, classes }));
  const tfjs = fc.constant(null).map(() => ({ kind: 'tfjs', topology: tinyTopology() }));
  // Just past the size limit: refused by its count, before anything is allocated.
  const justTooBig = fc.constant({ kind: 'logistic', inputShape: [FUZZ_MAX_MODEL_BYTES / 8], classes: 2 });
  return fc.oneof(
    { weight: 3, arbitrary: mlp },
    { weight: 2, arbitrary: logistic },
    { weight: 2, arbitrary: tfjs },
    { weight: 1, arbitrary: justTooBig },
  );
}

/** Valid `POST /v1/models` bodies: built-in architectures, or a tfjs model.json with its weights. */
export function modelBody(): fc.Arbitrary<Record<string, unknown>> {
  const plain = fc.record(
    { name: modelNames(), description: textUpTo(2048), architecture: smallArchitecture() },
    { requiredKeys: ['name', 'architecture'] },
  );
  const upload = fc.record({ name: modelNames(), upload: tinyUpload() }).map(({ name, upload }) => ({
    name,
    architecture: {
      kind: 'tfjs',
      topology: { modelTopology: tinyTopology(), weightsManifest: upload.manifest },
    },
    weights: upload.weights,
  }));
  return fc.oneof({ weight: 3, arbitrary: plain }, { weight: 1, arbitrary: upload });
}

/** Valid `POST /v1/jobs` bodies for the fixture models. */
export function jobBody(): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .record(
      {
        model: fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom('fuzz-mlp', 'fuzz-tfjs') },
          { weight: 1, arbitrary: modelNames() },
        ),
        baseVersion: fc.integer({ min: 1, max: 3 }),
        rounds: wholeNumber(1, 100_000),
        minClients: fc.integer({ min: 1, max: 3 }),
        roundTimeoutSec: fc.double({ min: 0, max: 7 * 86_400, minExcluded: true, noNaN: true }),
        epochs: wholeNumber(1, 1000),
        batchSize: wholeNumber(1, 65_536),
        learningRate: fc.double({ min: 0, max: 100, minExcluded: true, noNaN: true }),
        versionEvery: wholeNumber(1),
        serverLearningRate: fc.double({ min: 0, max: 100, minExcluded: true, noNaN: true }),
        maxUpdateNorm: fc.double({ min: 0, max: 1e6, minExcluded: true, noNaN: true }),
        engine: fc.constantFrom(...ENGINE_NAMES),
        share: fc.oneof(
          fc.record({ clientsPerRound: fc.integer({ min: 3, max: 100_000 }) }),
          fc.record({ fraction: fc.double({ min: 0, max: 1, minExcluded: true, noNaN: true }) }),
          fc.constant({}),
        ),
      },
      { requiredKeys: ['model'] },
    )
    .map(({ share, ...rest }) => ({ ...rest, ...(share ?? {}) }));
}

/** Valid `POST /v1/enroll` bodies: the live token and CSR placeholders, an optional site name. */
export function enrollBody(): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      token: fc.oneof(
        { weight: 4, arbitrary: fc.constant(PLACEHOLDER.enrollmentToken) },
        { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((s) => `loom1.${s}`) },
      ),
      csr: fc.oneof(
        { weight: 4, arbitrary: fc.constant(PLACEHOLDER.csr) },
        {
          weight: 1,
          arbitrary: fc
            .string({ maxLength: 40 })
            .map((s) => `-----BEGIN CERTIFICATE REQUEST-----\n${s}\n-----END CERTIFICATE REQUEST-----\n`),
        },
      ),
      name: textUpTo(64, 1),
    },
    { requiredKeys: ['token', 'csr'] },
  );
}

export function enrollmentTokenBody(): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({ ttlSec: wholeNumber(1, 30 * 86_400) }, { requiredKeys: [] });
}

export function apiTokenBody(): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({ name: textUpTo(64, 1), role: fc.constantFrom('admin', 'operator', 'viewer') });
}

/** Valid rollout plans (of a promotion request, a job or a promotion policy). */
export function rolloutPlan(): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      target: fc.oneof(
        fc.constant({ all: true }),
        fc.record({ labels: fc.constant({ site: 'berlin' }) }),
        fc.record({ agents: fc.array(textUpTo(32, 1), { minLength: 1, maxLength: 3 }) }),
      ),
      waves: fc.constantFrom([100], [10, 100], [10, 50, 100]),
      healthWindowSec: fc.double({ min: 0, max: 600, noNaN: true }),
      maxErrorRate: fc.double({ min: 0, max: 1, noNaN: true }),
      maxP99Ms: fc.integer({ min: 1, max: 60_000 }),
      minRequests: wholeNumber(0, 1000),
      failQuorum: fc.double({ min: 0, max: 1, noNaN: true }),
    },
    { requiredKeys: [] },
  );
}

/** Valid `POST /v1/models/:name/versions/:version/stage` bodies (a rollout plan only with production). */
export function stageBody(): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    fc.record(
      {
        stage: fc.constantFrom('none', 'staging', 'production', 'archived', 'retired'),
        force: fc.boolean(),
        reason: textUpTo(1024, 1),
      },
      { requiredKeys: ['stage'] },
    ),
    fc.record(
      { stage: fc.constant('production'), rollout: rolloutPlan() },
      { requiredKeys: ['stage', 'rollout'] },
    ),
  );
}

/** Valid `PATCH /v1/models/:name/versions/:version` bodies. */
export function versionPatchBody(): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      description: textUpTo(4096, 0),
      tags: fc.dictionary(
        fc.stringMatching(/^[a-z][a-z0-9._-]{0,10}$/),
        fc.oneof(textUpTo(256, 0), fc.constant(null)),
        {
          maxKeys: 4,
        },
      ),
    },
    { requiredKeys: [] },
  );
}

/** Valid `PUT /v1/models/:name/policy` bodies. */
export function policyBody(): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    fc.record(
      {
        metric: fc.constant('accuracy'),
        min: fc.double({ min: 0, max: 1, noNaN: true }),
        maxRegression: fc.double({ min: 0, max: 1, noNaN: true }),
        stageOnComplete: fc.constantFrom('none', 'staging'),
        rollout: rolloutPlan(),
      },
      { requiredKeys: ['metric'] },
    ),
    fc.record(
      { metric: fc.constant('loss'), max: fc.double({ min: 0, max: 10, noNaN: true }) },
      { requiredKeys: ['metric'] },
    ),
  );
}

/** Valid `PUT /v1/models/:name/aliases/:alias` bodies. */
export function aliasBody(): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({ version: fc.integer({ min: 1, max: 4 }) });
}

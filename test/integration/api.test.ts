// End-to-end tests of the operator HTTP API: a real coordinator (PKI, LevelDB, HTTPS on loopback)
// called over TLS with the pinned CA, as admin, operator, viewer and anonymous callers.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken, createKeyAndCsr } from '../../certs/index.ts';
import {
  API_DEFAULTS,
  type ApiDeps,
  createApiApp,
  FixedWindowRateLimiter,
  RATE_LIMIT_DEFAULTS,
} from '../../coordinator/api/index.ts';
import type { AuditEntry, AuditVerification } from '../../coordinator/audit/index.ts';
import type { AgentRecord, Role } from '../../coordinator/directory/index.ts';
import type { JobRecord } from '../../coordinator/jobs/index.ts';
import type { ModelRecord, VersionRecord } from '../../coordinator/registry/index.ts';
import { isLoomError, type LoomError } from '../../shared/errors/index.ts';
import { type HttpResponse, httpRequestRaw, requestJson } from '../../shared/http/index.ts';
import { createLogger, type Logger } from '../../shared/log/index.ts';
import { buildModel, type ModelArchitecture, writeWeights } from '../../shared/models/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';

interface Reply<T> {
  status: number;
  body: T;
}

interface ErrorBody {
  error: { code: string; message: string };
}

type CreatedModel = ModelRecord & { version: VersionRecord };
type ListedAgent = Pick<AgentRecord, 'id' | 'name' | 'revoked' | 'enrolledAt' | 'certNotAfter'> & {
  online: boolean;
  lastSeen: string | null;
  backend: string | null;
};

interface CallOptions {
  /** Bearer token; undefined means the cluster's admin token, null sends no Authorization header. */
  token?: string | null;
  /** A JSON-serialisable body. */
  body?: unknown;
  /** A body sent verbatim as application/json (for malformed JSON). */
  raw?: string;
}

/** One HTTPS call to the operator API with the pinned CA; the JSON body is parsed whatever the status. */
async function call<T>(
  cluster: TestCluster,
  method: string,
  path: string,
  opts: CallOptions = {},
): Promise<Reply<T>> {
  const token = opts.token === undefined ? cluster.adminToken : opts.token;
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.raw !== undefined) headers['content-type'] = 'application/json';
  const body = opts.raw !== undefined ? Buffer.from(opts.raw) : opts.body;
  const res = await httpRequestRaw(`${cluster.apiUrl}${path}`, {
    method,
    ca: cluster.caPem,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return { status: res.status, body: JSON.parse(res.body.toString('utf8')) as T };
}

/** Asserts a `{error: {code, message}}` reply with nothing else in it. */
function expectError(reply: Reply<unknown>, status: number, code: string, message?: RegExp): void {
  expect(reply.status).toBe(status);
  const body = reply.body as ErrorBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  if (message) expect(body.error.message).toMatch(message);
  // Never a stack trace or a source path.
  expect(body.error.message).not.toMatch(/\.ts:\d+|\n\s+at /);
}

/** Registers a new API token with `role` directly in the coordinator's token store. */
async function addToken(cluster: TestCluster, role: Role): Promise<string> {
  const t = createApiToken();
  await cluster.coordinator.tokens.addApiToken({
    id: t.id,
    hash: t.hash,
    role,
    name: `${role}-${t.id}`,
    createdAt: new Date().toISOString(),
  });
  return t.token;
}

async function auditEntries(
  cluster: TestCluster,
): Promise<{ entries: AuditEntry[]; chain: AuditVerification }> {
  const res = await call<{ entries: AuditEntry[]; chain: AuditVerification }>(
    cluster,
    'GET',
    '/v1/audit?limit=1000',
  );
  expect(res.status).toBe(200);
  // Every coordinator's log starts with init's own entry, the initial admin token; the tests
  // below look at what their calls added.
  const { entries, chain } = res.body;
  expect(entries[0]).toMatchObject({
    seq: 1,
    actor: 'local: loom coordinator init',
    action: 'api-token.create',
  });
  return { entries: entries.slice(1), chain: { ...chain, entries: chain.entries - 1 } };
}

async function modelNames(cluster: TestCluster): Promise<string[]> {
  const res = await call<{ models: ModelRecord[] }>(cluster, 'GET', '/v1/models');
  expect(res.status).toBe(200);
  return res.body.models.map((m) => m.name);
}

/** A `fetch` for tf.io.http that pins the cluster CA and sends the bearer token (Node's fetch cannot take a CA). */
function pinnedFetch(cluster: TestCluster, token: string, seen: string[]): typeof fetch {
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    seen.push(url);
    const res = await httpRequestRaw(url, {
      method: init?.method ?? 'GET',
      ca: cluster.caPem,
      headers: { authorization: `Bearer ${token}`, accept: '*/*' },
    });
    const headers = new Headers();
    for (const [key, value] of Object.entries(res.headers)) {
      if (typeof value === 'string') headers.set(key, value);
    }
    return new Response(new Uint8Array(res.body), { status: res.status, headers });
  };
}

function floatsOf(buf: Buffer): Float32Array {
  const copy = new Uint8Array(buf.length);
  copy.set(buf);
  return new Float32Array(copy.buffer);
}

const MLP: ModelArchitecture = { kind: 'mlp', inputShape: [4], layers: [8, 3], activation: 'tanh' };
// 4*8 + 8 + 8*3 + 3
const MLP_PARAMS = 67;

describe('authentication and roles', () => {
  let cluster: TestCluster;
  let viewer: string;
  let operator: string;

  beforeAll(async () => {
    cluster = await startTestCluster();
    viewer = await addToken(cluster, 'viewer');
    operator = await addToken(cluster, 'operator');
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it('refuses a call without a token with 401 LOOM_ERR_UNAUTHORIZED', async () => {
    for (const path of ['/v1/models', '/v1/jobs', '/v1/agents', '/v1/audit']) {
      expectError(
        await call(cluster, 'GET', path, { token: null }),
        401,
        'LOOM_ERR_UNAUTHORIZED',
        /missing bearer token/,
      );
    }
    expectError(
      await call(cluster, 'POST', '/v1/models', { token: null, body: { name: 'x' } }),
      401,
      'LOOM_ERR_UNAUTHORIZED',
    );
  });

  it('refuses a malformed token or another auth scheme with 401', async () => {
    for (const header of ['not-a-token', 'loom_123_456', `${cluster.adminToken}x`]) {
      expectError(
        await call(cluster, 'GET', '/v1/models', { token: header }),
        401,
        'LOOM_ERR_UNAUTHORIZED',
        /invalid bearer token/,
      );
    }
    const basic = await httpRequestRaw(`${cluster.apiUrl}/v1/models`, {
      ca: cluster.caPem,
      headers: { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` },
    });
    expect(basic.status).toBe(401);
  });

  it('refuses a well-formed token with a wrong secret or an unknown id with 401', async () => {
    const [, id] = cluster.adminToken.split('_');
    const wrongSecret = `loom_${id}_${'0'.repeat(64)}`;
    expectError(
      await call(cluster, 'GET', '/v1/models', { token: wrongSecret }),
      401,
      'LOOM_ERR_UNAUTHORIZED',
      /invalid bearer token/,
    );
    const unknownId = createApiToken().token;
    expectError(await call(cluster, 'GET', '/v1/models', { token: unknownId }), 401, 'LOOM_ERR_UNAUTHORIZED');
    // The messages do not echo the token.
    const res = await call<ErrorBody>(cluster, 'GET', '/v1/models', { token: wrongSecret });
    expect(res.body.error.message).not.toContain(wrongSecret.slice(-64));
  });

  it('refuses a revoked token with 401', async () => {
    const t = createApiToken();
    await cluster.coordinator.tokens.addApiToken({
      id: t.id,
      hash: t.hash,
      role: 'admin',
      name: 'retired',
      createdAt: new Date().toISOString(),
      revoked: true,
    });
    expectError(
      await call(cluster, 'GET', '/v1/models', { token: t.token }),
      401,
      'LOOM_ERR_UNAUTHORIZED',
      /invalid bearer token/,
    );
  });

  it('lets a viewer read but not create models, jobs, enrollment tokens or revocations (403)', async () => {
    for (const path of ['/v1/models', '/v1/jobs', '/v1/agents', '/v1/audit']) {
      expect((await call(cluster, 'GET', path, { token: viewer })).status).toBe(200);
    }
    const forbidden: [string, unknown][] = [
      ['/v1/models', { name: 'viewer-model', architecture: MLP }],
      ['/v1/jobs', { model: 'viewer-model' }],
      ['/v1/enrollment-tokens', {}],
      ['/v1/agents/agent-000000000000/revoke', {}],
      ['/v1/jobs/job-x/cancel', {}],
    ];
    for (const [path, body] of forbidden) {
      expectError(
        await call(cluster, 'POST', path, { token: viewer, body }),
        403,
        'LOOM_ERR_FORBIDDEN',
        /needs the operator role; the token has viewer/,
      );
    }
    expect(await modelNames(cluster)).toEqual([]);
  });

  it('lets an operator create a model and records the token name as the actor', async () => {
    const res = await call<CreatedModel>(cluster, 'POST', '/v1/models', {
      token: operator,
      body: { name: 'by-operator', architecture: MLP },
    });
    expect(res.status).toBe(201);
    const { entries } = await auditEntries(cluster);
    const create = entries.find((e) => e.action === 'model.create');
    expect(create).toMatchObject({ target: 'by-operator' });
    expect(create?.actor).toMatch(/^operator-/);
  });

  it('reports the backend and connected agents on /healthz without a token', async () => {
    const res = await call<{ status: string; backend: string; agentsConnected: number; agentPort: number }>(
      cluster,
      'GET',
      '/healthz',
      { token: null },
    );
    expect(res).toEqual({
      status: 200,
      body: {
        status: 'ok',
        backend: cluster.coordinator.backend.name,
        agentsConnected: 0,
        agentPort: cluster.coordinator.agentPort,
      },
    });
  });

  it('serves the CA without a token', async () => {
    const res = await call<{ caCertificate: string; fingerprint: string }>(cluster, 'GET', '/v1/ca', {
      token: null,
    });
    expect(res.status).toBe(200);
    expect(res.body.caCertificate).toBe(cluster.caPem);
    expect(res.body.fingerprint).toBe(cluster.coordinator.caFingerprint);
  });

  it('answers an unknown route with a 404 JSON error', async () => {
    expectError(
      await call(cluster, 'GET', '/nope', { token: null }),
      404,
      'LOOM_ERR_NOT_FOUND',
      /GET \/nope/,
    );
    expectError(await call(cluster, 'DELETE', '/v1/models', {}), 404, 'LOOM_ERR_NOT_FOUND');
    expectError(await call(cluster, 'GET', '/v1/nothing', {}), 404, 'LOOM_ERR_NOT_FOUND');
    // Under /v1 the token is checked first, so anonymous callers learn nothing about routes.
    expectError(await call(cluster, 'GET', '/v1/nothing', { token: null }), 401, 'LOOM_ERR_UNAUTHORIZED');
  });
});

describe('models', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster();
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it('creates an mlp model as version 1 with its parameter count (201)', async () => {
    const res = await call<CreatedModel>(cluster, 'POST', '/v1/models', {
      body: { name: 'mlp', description: 'a small mlp', architecture: MLP },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: 'mlp',
      description: 'a small mlp',
      architecture: MLP,
      inputShape: [4],
      classes: 3,
      paramCount: MLP_PARAMS,
      latestVersion: 1,
      version: { model: 'mlp', version: 1, paramCount: MLP_PARAMS, parentVersion: null, jobId: null },
    });
  });

  it('creates a logistic model from `inputs` and `classes` (201)', async () => {
    const res = await call<CreatedModel>(cluster, 'POST', '/v1/models', {
      body: { name: 'logistic', architecture: { kind: 'logistic', inputs: 5, classes: 2 } },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: 'logistic',
      architecture: { kind: 'logistic', inputShape: [5], classes: 2 },
      inputShape: [5],
      classes: 2,
      paramCount: 12,
      latestVersion: 1,
      version: { version: 1, paramCount: 12 },
    });
  });

  it('refuses a duplicate name with 409 LOOM_ERR_CONFLICT and keeps the original', async () => {
    const before = await call<ModelRecord>(cluster, 'GET', '/v1/models/mlp');
    const res = await call(cluster, 'POST', '/v1/models', {
      body: { name: 'mlp', architecture: { kind: 'logistic', inputs: 2, classes: 2 } },
    });
    expectError(res, 409, 'LOOM_ERR_CONFLICT', /"mlp" already exists/);
    expect(await call(cluster, 'GET', '/v1/models/mlp')).toEqual(before);
  });

  it('creates a name exactly once when two creates race', async () => {
    const body = { name: 'raced', architecture: { kind: 'logistic', inputs: 3, classes: 2 } };
    const replies = await Promise.all([
      call(cluster, 'POST', '/v1/models', { body }),
      call(cluster, 'POST', '/v1/models', { body }),
    ]);
    expect(replies.map((r) => r.status).sort()).toEqual([201, 409]);
    const versions = await call<{ versions: VersionRecord[] }>(cluster, 'GET', '/v1/models/raced/versions');
    expect(versions.body.versions.map((v) => v.version)).toEqual([1]);
  });

  it('refuses bad bodies with 400 and a message naming the field, changing nothing', async () => {
    const modelsBefore = await modelNames(cluster);
    const auditBefore = (await auditEntries(cluster)).chain.entries;
    const cases: [CallOptions, string, RegExp][] = [
      [{ body: { architecture: MLP } }, 'LOOM_ERR_INVALID_ARGUMENT', /^name must be a string/],
      [{ body: { name: '', architecture: MLP } }, 'LOOM_ERR_INVALID_ARGUMENT', /^name must not be empty/],
      [
        { body: { name: 'bad name', architecture: MLP } },
        'LOOM_ERR_INVALID_ARGUMENT',
        /model name "bad name"/,
      ],
      [{ body: { name: 'no-arch' } }, 'LOOM_ERR_MODEL_SPEC', /^architecture: must be an object/],
      [
        { body: { name: 'rnn', architecture: { kind: 'rnn', inputShape: [4] } } },
        'LOOM_ERR_MODEL_SPEC',
        /^architecture\.kind: must be "mlp", "logistic", "cnn" or "tfjs"/,
      ],
      [
        { body: { name: 'cnn', architecture: { kind: 'cnn', inputShape: [4] } } },
        'LOOM_ERR_MODEL_SPEC',
        /^architecture\.inputShape: must be \[height, width, channels\]/,
      ],
      [
        { body: { name: 'neg', architecture: { ...MLP, layers: [8, -3] } } },
        'LOOM_ERR_MODEL_SPEC',
        /^architecture\.layers: must hold positive integers/,
      ],
      [
        { body: { name: 'one-class', architecture: { ...MLP, layers: [8, 1] } } },
        'LOOM_ERR_MODEL_SPEC',
        /^architecture\.layers: the last layer/,
      ],
      [
        { body: { name: 'act', architecture: { ...MLP, activation: 'swish' } } },
        'LOOM_ERR_MODEL_SPEC',
        /^architecture\.activation: must be one of/,
      ],
      [
        { body: { name: 'shape', architecture: { kind: 'logistic', inputShape: [0], classes: 2 } } },
        'LOOM_ERR_MODEL_SPEC',
        /^architecture\.inputShape:/,
      ],
      [
        { body: { name: 'extra', architecture: MLP, colour: 'blue' } },
        'LOOM_ERR_INVALID_ARGUMENT',
        /^colour is not a known field \(expected one of: name, description, architecture, weights, holdoutFraction\)/,
      ],
      [
        { body: { name: 'mlp-weights', architecture: MLP, weights: 'AAAA' } },
        'LOOM_ERR_INVALID_ARGUMENT',
        /^weights is only accepted with a tfjs architecture/,
      ],
      [{ raw: '{"name": "half",' }, 'LOOM_ERR_INVALID_ARGUMENT', /request body must be valid JSON/],
      [{ raw: '' }, 'LOOM_ERR_INVALID_ARGUMENT', /request body must be valid JSON/],
      [
        { body: [{ name: 'array', architecture: MLP }] },
        'LOOM_ERR_INVALID_ARGUMENT',
        /must be a JSON object/,
      ],
      [{ raw: '"mlp"' }, 'LOOM_ERR_INVALID_ARGUMENT', /must be a JSON object/],
      [{ raw: 'null' }, 'LOOM_ERR_INVALID_ARGUMENT', /must be a JSON object/],
    ];
    for (const [opts, code, message] of cases) {
      expectError(await call(cluster, 'POST', '/v1/models', opts), 400, code, message);
    }
    expect(await modelNames(cluster)).toEqual(modelsBefore);
    expect((await auditEntries(cluster)).chain.entries).toBe(auditBefore);
  });

  it('answers 404 for an unknown model or version and 400 for a malformed version', async () => {
    expectError(await call(cluster, 'GET', '/v1/models/ghost'), 404, 'LOOM_ERR_NOT_FOUND', /"ghost"/);
    expectError(await call(cluster, 'GET', '/v1/models/ghost/versions'), 404, 'LOOM_ERR_NOT_FOUND');
    expectError(await call(cluster, 'GET', '/v1/models/ghost/versions/1'), 404, 'LOOM_ERR_NOT_FOUND');
    expectError(
      await call(cluster, 'GET', '/v1/models/ghost/versions/1/artifact'),
      404,
      'LOOM_ERR_NOT_FOUND',
    );
    expectError(
      await call(cluster, 'GET', '/v1/models/mlp/versions/2'),
      404,
      'LOOM_ERR_NOT_FOUND',
      /has no version 2/,
    );
    expectError(await call(cluster, 'GET', '/v1/models/mlp/versions/2/artifact'), 404, 'LOOM_ERR_NOT_FOUND');
    expectError(
      await call(cluster, 'GET', '/v1/models/mlp/versions/2/artifact/weights.bin'),
      404,
      'LOOM_ERR_NOT_FOUND',
    );
    // A name is read as an alias, which this model does not have.
    expectError(
      await call(cluster, 'GET', '/v1/models/mlp/versions/abc'),
      404,
      'LOOM_ERR_NOT_FOUND',
      /has no alias "abc"/,
    );
    for (const v of ['0', '1.5', '-1']) {
      expectError(
        await call(cluster, 'GET', `/v1/models/mlp/versions/${v}`),
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /version/,
      );
    }
  });

  it('lists models and shows one with its deployed version', async () => {
    expect(await modelNames(cluster)).toEqual(['logistic', 'mlp', 'raced']);
    const one = await call<ModelRecord & { deployedVersion: number | null }>(
      cluster,
      'GET',
      '/v1/models/mlp',
    );
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ name: 'mlp', latestVersion: 1, deployedVersion: null });
  });

  it('gives version 1 its lineage fields: no parent, no job, a creation time', async () => {
    const res = await call<VersionRecord>(cluster, 'GET', '/v1/models/mlp/versions/1');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      model: 'mlp',
      version: 1,
      parentVersion: null,
      jobId: null,
      round: null,
      agents: [],
      numExamples: 0,
      paramCount: MLP_PARAMS,
    });
    expect(res.body.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.parse(res.body.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    const list = await call<{ versions: VersionRecord[] }>(cluster, 'GET', '/v1/models/mlp/versions');
    expect(list.body.versions).toEqual([res.body]);
  });

  it('serves an artifact that tf.loadLayersModel loads with the registry weights', async () => {
    const seen: string[] = [];
    const url = `${cluster.apiUrl}/v1/models/mlp/versions/1/artifact`;
    const loaded = await tf.loadLayersModel(
      tf.io.http(url, { fetchFunc: pinnedFetch(cluster, cluster.adminToken, seen) }),
    );
    try {
      expect(seen).toEqual([url, `${url}/weights.bin`]);
      const stored = await cluster.coordinator.registry.getWeights('mlp', 1);
      expect(loaded.weights.map((w) => w.originalName)).toEqual(stored.map((w) => w.name));
      loaded.weights.forEach((w, i) => {
        expect(Array.from(w.read().dataSync())).toEqual(Array.from(stored[i].data));
      });

      // Same predictions as a model built from the registry's architecture and weights.
      const reference = await buildModel(MLP);
      writeWeights(reference, stored);
      const input = tf.tensor2d([
        [0, 0, 0, 0],
        [1, -2, 0.5, 3],
      ]);
      const [got, want] = [loaded.predict(input), reference.predict(input)] as tf.Tensor[];
      expect(got.shape).toEqual([2, 3]);
      const g = got.arraySync() as number[][];
      const w = want.arraySync() as number[][];
      g.forEach((row, r) => {
        row.forEach((p, c) => {
          expect(p).toBeCloseTo(w[r][c], 6);
        });
      });
      tf.dispose([input, got, want]);
      reference.dispose();
    } finally {
      loaded.dispose();
    }
  });

  it('serves the model.json with a weights manifest and metadata', async () => {
    const res = await call<tf.io.ModelJSON>(cluster, 'GET', '/v1/models/logistic/versions/1/artifact');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      format: 'layers-model',
      weightsManifest: [
        {
          paths: ['artifact/weights.bin'],
          weights: [
            { name: 'dense_0/kernel', shape: [5, 2], dtype: 'float32' },
            { name: 'dense_0/bias', shape: [2], dtype: 'float32' },
          ],
        },
      ],
      userDefinedMetadata: { loom: { model: 'logistic', version: 1 } },
    });
    const bin = await httpRequestRaw(`${cluster.apiUrl}/v1/models/logistic/versions/1/artifact/weights.bin`, {
      ca: cluster.caPem,
      headers: { authorization: `Bearer ${cluster.adminToken}` },
    });
    expect(bin.status).toBe(200);
    expect(bin.headers['content-type']).toBe('application/octet-stream');
    expect(bin.body.length).toBe(12 * 4);
    // The version's sha256 is the hash of exactly what a user downloads.
    const version = await call<VersionRecord>(cluster, 'GET', '/v1/models/logistic/versions/1');
    expect(createHash('sha256').update(bin.body).digest('hex')).toBe(version.body.sha256);
  });

  it('pages and filters versions and models, and refuses query parameters it does not know', async () => {
    const page1 = await call<{ models: { name: string }[]; next?: string }>(
      cluster,
      'GET',
      '/v1/models?limit=2',
    );
    expect(page1.body.models).toHaveLength(2);
    expect(page1.body.next).toBe(page1.body.models[1].name);
    const page2 = await call<{ models: { name: string }[]; next?: string }>(
      cluster,
      'GET',
      `/v1/models?limit=2&after=${page1.body.next}`,
    );
    const all = await modelNames(cluster);
    expect([...page1.body.models, ...page2.body.models].map((m) => m.name)).toEqual(all.slice(0, 4));
    const byJob = await call<{ versions: VersionRecord[] }>(
      cluster,
      'GET',
      '/v1/models/mlp/versions?job=job-none',
    );
    expect(byJob.body.versions).toEqual([]);
    for (const path of [
      '/v1/models?state=running',
      '/v1/models/mlp/versions?limit=0',
      '/v1/models/mlp?x=1',
      '/v1/agents?online=maybe',
    ]) {
      expectError(await call(cluster, 'GET', path), 400, 'LOOM_ERR_INVALID_ARGUMENT');
    }
    expectError(
      await call(cluster, 'GET', '/v1/jobs?sort=asc'),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
      /^sort is not a query parameter of this route \(known: limit, after, state, model\)/,
    );
  });

  describe('with a TensorFlow.js topology', () => {
    let tiny: tf.Sequential;
    let topology: Record<string, unknown>;
    const kernel = Float32Array.from({ length: 12 }, (_, i) => (i - 6) / 10);
    const bias = Float32Array.from([0.5, -1, 2]);

    beforeAll(() => {
      tiny = tf.sequential({
        name: 'tiny',
        layers: [tf.layers.dense({ name: 'out', units: 3, inputShape: [4], activation: 'softmax' })],
      });
      topology = tiny.toJSON(null, false) as unknown as Record<string, unknown>;
    });
    afterAll(() => {
      tiny?.dispose();
    });

    it('creates a model from the topology alone with fresh weights', async () => {
      const res = await call<CreatedModel>(cluster, 'POST', '/v1/models', {
        body: { name: 'tfjs-fresh', architecture: { kind: 'tfjs', topology } },
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        name: 'tfjs-fresh',
        architecture: { kind: 'tfjs', topology: { class_name: 'Sequential' } },
        inputShape: [4],
        classes: 3,
        paramCount: 15,
        version: { version: 1, paramCount: 15 },
      });
    });

    it('refuses an initializer TensorFlow.js would run forever or cannot know, with 400 and the field', async () => {
      const withInit = (init: unknown): unknown => {
        const t = JSON.parse(JSON.stringify(topology)) as {
          config: { layers: { config: Record<string, unknown> }[] };
        };
        t.config.layers[0].config.kernel_initializer = init;
        return { kind: 'tfjs', topology: t };
      };
      const cases: [unknown, RegExp][] = [
        // A truncated normal with a NaN deviation samples forever on the event loop.
        [
          { class_name: 'VarianceScaling', config: { scale: 'x', mode: 'fan_avg', distribution: 'normal' } },
          /scale: must be a positive finite number/,
        ],
        [
          { class_name: 'TruncatedNormal', config: { stddev: -1 } },
          /stddev: must be a positive finite number/,
        ],
        [{ class_name: 'RandomUniform', config: { minval: 1, maxval: 0 } }, /minval must be below maxval/],
        [{ class_name: 'Mystery', config: {} }, /class_name: must be one of Zeros, Ones/],
      ];
      for (const [init, message] of cases) {
        const res = await call(cluster, 'POST', '/v1/models', {
          body: { name: 'tfjs-bad', architecture: withInit(init) },
        });
        expectError(res, 400, 'LOOM_ERR_MODEL_SPEC', message);
      }
      expect(await modelNames(cluster)).not.toContain('tfjs-bad');
    });

    it('refuses a topology too large to build before TensorFlow.js allocates any of it', async () => {
      const huge = JSON.parse(JSON.stringify(topology)) as {
        config: { layers: { config: Record<string, unknown> }[] };
      };
      // 2^31 inputs × 3 units: 24 GiB of float32 weights if it were built.
      huge.config.layers[0].config.batch_input_shape = [null, 2 ** 31];
      const before = process.memoryUsage().rss;
      const res = await call(cluster, 'POST', '/v1/models', {
        body: { name: 'tfjs-huge', architecture: { kind: 'tfjs', topology: huge } },
      });
      expectError(res, 400, 'LOOM_ERR_MODEL_SPEC', /6,442,450,947 parameters/);
      expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024);
      // A topology the counter cannot follow is refused on an absurd dimension instead.
      const functional = { class_name: 'Functional', config: { layers: [{ config: { units: 2 ** 30 } }] } };
      const refused = await call(cluster, 'POST', '/v1/models', {
        body: { name: 'tfjs-huge', architecture: { kind: 'tfjs', topology: functional } },
      });
      expectError(refused, 400, 'LOOM_ERR_MODEL_SPEC', /dimension above 16777216/);
      expect(await modelNames(cluster)).not.toContain('tfjs-huge');
    });

    it('creates a model with uploaded weights, stored as given and reordered to the model', async () => {
      // The manifest lists the bias first; the registry stores the model's own order (kernel, bias).
      const weightsBin = Buffer.concat([Buffer.from(bias.buffer), Buffer.from(kernel.buffer)]);
      const modelJson = {
        modelTopology: topology,
        weightsManifest: [
          {
            paths: ['weights.bin'],
            weights: [
              { name: 'out/bias', shape: [3], dtype: 'float32' },
              { name: 'out/kernel', shape: [4, 3], dtype: 'float32' },
            ],
          },
        ],
      };
      const res = await call<CreatedModel>(cluster, 'POST', '/v1/models', {
        body: {
          name: 'tfjs-uploaded',
          architecture: { kind: 'tfjs', topology: modelJson },
          weights: weightsBin.toString('base64'),
        },
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ inputShape: [4], classes: 3, paramCount: 15, latestVersion: 1 });

      const base = `${cluster.apiUrl}/v1/models/tfjs-uploaded/versions/1/artifact`;
      const manifest = await call<tf.io.ModelJSON>(
        cluster,
        'GET',
        '/v1/models/tfjs-uploaded/versions/1/artifact',
      );
      expect(manifest.body.weightsManifest[0].weights.map((w) => w.name)).toEqual(['out/kernel', 'out/bias']);
      const bin = await httpRequestRaw(`${base}/weights.bin`, {
        ca: cluster.caPem,
        headers: { authorization: `Bearer ${cluster.adminToken}` },
      });
      expect(bin.status).toBe(200);
      expect(Array.from(floatsOf(bin.body))).toEqual([...kernel, ...bias]);
    });

    it('loads the uploaded model with tf.loadLayersModel and predicts softmax(bias) on a zero input', async () => {
      const url = `${cluster.apiUrl}/v1/models/tfjs-uploaded/versions/1/artifact`;
      const loaded = await tf.loadLayersModel(
        tf.io.http(url, { fetchFunc: pinnedFetch(cluster, cluster.adminToken, []) }),
      );
      try {
        const stored = await cluster.coordinator.registry.getWeights('tfjs-uploaded', 1);
        const storedBias = stored.find((w) => w.name === 'out/bias');
        expect(storedBias && Array.from(storedBias.data)).toEqual(Array.from(bias));
        const exp = Array.from(bias, (b) => Math.exp(b));
        const sum = exp.reduce((a, b) => a + b, 0);
        const zeros = tf.zeros([1, 4]);
        const out = loaded.predict(zeros) as tf.Tensor;
        const probs = Array.from(out.dataSync());
        tf.dispose([zeros, out]);
        expect(probs).toHaveLength(3);
        probs.forEach((p, i) => {
          expect(p).toBeCloseTo(exp[i] / sum, 6);
        });
      } finally {
        loaded.dispose();
      }
    });

    it('refuses uploaded weights that do not fit the manifest or the model with 400', async () => {
      const before = await modelNames(cluster);
      const manifest = (weights: { name: string; shape: unknown[]; dtype?: string }[]): unknown => ({
        modelTopology: topology,
        weightsManifest: [{ paths: ['weights.bin'], weights }],
      });
      const good = [
        { name: 'out/kernel', shape: [4, 3] },
        { name: 'out/bias', shape: [3] },
      ];
      const bytes = (n: number): string => Buffer.alloc(n * 4).toString('base64');
      const cases: [unknown, string, RegExp][] = [
        [topology, bytes(15), /weightsManifest/],
        [manifest(good), bytes(14), /the manifest needs more/],
        [manifest(good), bytes(16), /the manifest describes 60/],
        [manifest([good[0], { name: 'out/bias', shape: [3], dtype: 'int32' }]), bytes(15), /must be float32/],
        [manifest([good[0], { name: 'other/bias', shape: [3] }]), bytes(15), /no out\/bias/],
        [
          manifest([{ name: 'out/kernel', shape: [3, 4] }, good[1]]),
          bytes(15),
          /no out\/kernel of shape \[4,3\] \(the manifest gives \[3,4\]\)/,
        ],
        [
          manifest([{ name: 'out/kernel', shape: [-4, 3] }, good[1]]),
          bytes(15),
          /^weightsManifest\.weights\.0\.shape must be an array of non-negative integers/,
        ],
        [
          manifest([{ name: 'out/kernel', shape: [4, 'x'] }, good[1]]),
          bytes(15),
          /^weightsManifest\.weights\.0\.shape must be an array of non-negative integers/,
        ],
      ];
      for (const [top, weights, message] of cases) {
        const res = await call(cluster, 'POST', '/v1/models', {
          body: { name: 'tfjs-bad', architecture: { kind: 'tfjs', topology: top }, weights },
        });
        expectError(res, 400, 'LOOM_ERR_MODEL_SPEC', message);
      }
      expectError(
        await call(cluster, 'POST', '/v1/models', {
          body: { name: 'tfjs-bad', architecture: { kind: 'tfjs', topology: { class_name: 'Sequential' } } },
        }),
        400,
        'LOOM_ERR_MODEL_SPEC',
        /^architecture\.topology: needs class_name and config/,
      );
      expectError(
        await call(cluster, 'POST', '/v1/models', {
          body: {
            name: 'tfjs-bad',
            architecture: { kind: 'tfjs', topology: { class_name: 'NoSuchModel', config: {} } },
          },
        }),
        400,
        'LOOM_ERR_MODEL_SPEC',
        /topology could not be built/,
      );
      expect(await modelNames(cluster)).toEqual(before);
    });
  });

  it('refuses a model no training task could carry with 400, naming the limit and the setting', async () => {
    // 16M inputs × 65,536 units: about 10^12 parameters, refused before anything is allocated.
    const huge = await call(cluster, 'POST', '/v1/models', {
      body: { name: 'huge', architecture: { kind: 'mlp', inputShape: [1 << 24], layers: [65_536, 10] } },
    });
    expectError(
      huge,
      400,
      'LOOM_ERR_MODEL_SPEC',
      /1,099,512,348,682 parameters .*largest model a training task can carry is 1,024 MiB .*maxPayloadBytes, LOOM_MAX_PAYLOAD_BYTES/,
    );
    // Just past the limit is refused the same way; nothing was written.
    const over = await call(cluster, 'POST', '/v1/models', {
      body: { name: 'over', architecture: { kind: 'logistic', inputShape: [16_384, 16_385], classes: 2 } },
    });
    expectError(over, 400, 'LOOM_ERR_MODEL_SPEC', /largest model a training task can carry/);
    expect(await modelNames(cluster)).not.toContain('huge');
    expect(await modelNames(cluster)).not.toContain('over');
  });

  it('audits every model created and nothing else, with an intact chain', async () => {
    const { entries, chain } = await auditEntries(cluster);
    expect(chain).toEqual({ ok: true, entries: entries.length });
    expect(entries.map((e) => `${e.action} ${e.target}`)).toEqual([
      'model.create mlp',
      'model.create logistic',
      'model.create raced',
      'model.create tfjs-fresh',
      'model.create tfjs-uploaded',
    ]);
  });
});

describe('jobs', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster();
    await cluster.api('/v1/models', { name: 'mlp', architecture: MLP });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  async function job(id: string): Promise<JobRecord> {
    const res = await call<JobRecord>(cluster, 'GET', `/v1/jobs/${id}`);
    expect(res.status).toBe(200);
    return res.body;
  }

  it('refuses an unknown model with 404 and an unknown base version with 404', async () => {
    expectError(
      await call(cluster, 'POST', '/v1/jobs', { body: { model: 'ghost' } }),
      404,
      'LOOM_ERR_NOT_FOUND',
      /"ghost"/,
    );
    expectError(
      await call(cluster, 'POST', '/v1/jobs', { body: { model: 'mlp', baseVersion: 7 } }),
      404,
      'LOOM_ERR_NOT_FOUND',
      /has no version 7/,
    );
  });

  it('refuses invalid configurations with 400 naming the field, creating no job', async () => {
    const cases: [unknown, RegExp][] = [
      [{}, /^model must be a string/],
      [{ model: 'mlp', rounds: 0 }, /^rounds must be at least 1/],
      [{ model: 'mlp', rounds: 1.5 }, /^rounds must be an integer/],
      [{ model: 'mlp', rounds: '3' }, /^rounds must be a finite number/],
      [
        { model: 'mlp', clientsPerRound: 2, fraction: 0.5 },
        /^fraction cannot be given together with clientsPerRound/,
      ],
      [
        { model: 'mlp', clientsPerRound: 1, minClients: 2 },
        /^clientsPerRound must be at least minClients \(2\)/,
      ],
      [{ model: 'mlp', fraction: 1.5 }, /^fraction must be at most 1/],
      [{ model: 'mlp', roundTimeoutSec: 0 }, /^roundTimeoutSec must be greater than 0/],
      [{ model: 'mlp', learningRate: -1 }, /^learningRate must be greater than 0/],
      // The wording is job-record.ts's (changed by another fix); both engine names must appear.
      [{ model: 'mlp', engine: 'gpu' }, /^engine must be .*typed-array.*tfjs/],
      [{ model: 'mlp', epoch: 2 }, /^epoch is not a known field/],
    ];
    for (const [body, message] of cases) {
      expectError(
        await call(cluster, 'POST', '/v1/jobs', { body }),
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        message,
      );
    }
    expectError(
      await call(cluster, 'POST', '/v1/jobs', { raw: '[1, 2]' }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
      /must be a JSON object/,
    );
    const list = await call<{ jobs: JobRecord[] }>(cluster, 'GET', '/v1/jobs');
    expect(list.body.jobs).toEqual([]);
  });

  it('fails a job whose round gets no updates with LOOM_ERR_ROUND_QUORUM and a clear message', async () => {
    const created = await call<JobRecord>(cluster, 'POST', '/v1/jobs', {
      body: { model: 'mlp', rounds: 2, minClients: 1, roundTimeoutSec: 1 },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      config: { model: 'mlp', rounds: 2, minClients: 1, roundTimeoutSec: 1 },
      baseVersion: 1,
      createdBy: 'initial admin',
    });
    expect(['pending', 'running']).toContain(created.body.state);
    const id = created.body.id;

    let final: JobRecord | undefined;
    await waitUntil(
      async () => {
        final = await job(id);
        return final.state !== 'pending' && final.state !== 'running';
      },
      10_000,
      'the job to fail',
    );
    // The round that failed the job is kept, with how it ended.
    expect(final).toMatchObject({
      state: 'failed',
      currentRound: 1,
      rounds: [{ round: 1, state: 'failed', sampled: [], participants: [], failures: [] }],
      error: { code: 'LOOM_ERR_ROUND_QUORUM' },
    });
    expect(final?.error?.message).toMatch(
      /^round 1 got 0 of the 1 updates it needs within 1 s \(0 agents online/,
    );
    expect(final?.latestVersion).toBeUndefined();
    expect(Date.parse(final?.finishedAt ?? '')).not.toBeNaN();
    // No version was written, and a finished job cannot be cancelled.
    const versions = await call<{ versions: VersionRecord[] }>(cluster, 'GET', '/v1/models/mlp/versions');
    expect(versions.body.versions.map((v) => v.version)).toEqual([1]);
    expectError(
      await call(cluster, 'POST', `/v1/jobs/${id}/cancel`, { body: {} }),
      409,
      'LOOM_ERR_CONFLICT',
      /is failed and cannot be cancelled/,
    );
  });

  it('cancels a running job, then refuses a second cancel with 409', async () => {
    const created = await call<JobRecord>(cluster, 'POST', '/v1/jobs', {
      body: { model: 'mlp', rounds: 3, minClients: 1, roundTimeoutSec: 60 },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    await waitUntil(async () => (await job(id)).state === 'running', 10_000, 'the job to run');

    const cancelled = await call<JobRecord>(cluster, 'POST', `/v1/jobs/${id}/cancel`, { body: {} });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({
      id,
      state: 'cancelled',
      error: { code: 'LOOM_ERR_JOB_CANCELLED' },
    });
    expect(await job(id)).toMatchObject({ state: 'cancelled' });
    expectError(
      await call(cluster, 'POST', `/v1/jobs/${id}/cancel`, { body: {} }),
      409,
      'LOOM_ERR_CONFLICT',
      /is cancelled/,
    );
  });

  it('lists jobs newest first and answers 404 for an unknown job', async () => {
    const list = await call<{ jobs: JobRecord[] }>(cluster, 'GET', '/v1/jobs');
    expect(list.status).toBe(200);
    expect(list.body.jobs.map((j) => j.state)).toEqual(['cancelled', 'failed']);
    // Filters and pages: newest first, `next` is the last id of a full page.
    const failed = await call<{ jobs: JobRecord[] }>(cluster, 'GET', '/v1/jobs?state=failed&model=mlp');
    expect(failed.body.jobs.map((j) => j.state)).toEqual(['failed']);
    const first = await call<{ jobs: JobRecord[]; next?: string }>(cluster, 'GET', '/v1/jobs?limit=1');
    expect(first.body.jobs.map((j) => j.state)).toEqual(['cancelled']);
    const second = await call<{ jobs: JobRecord[]; next?: string }>(
      cluster,
      'GET',
      `/v1/jobs?limit=1&after=${first.body.next}`,
    );
    expect(second.body.jobs.map((j) => j.state)).toEqual(['failed']);
    expect(second.body.next).toBeUndefined();
    expectError(
      await call(cluster, 'GET', '/v1/jobs?state=done'),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
      /state must be one of/,
    );
    expectError(await call(cluster, 'GET', '/v1/jobs/job-nope'), 404, 'LOOM_ERR_NOT_FOUND', /job-nope/);
    expectError(
      await call(cluster, 'POST', '/v1/jobs/job-nope/cancel', { body: {} }),
      404,
      'LOOM_ERR_NOT_FOUND',
    );
  });

  it('audits job creation and cancellation with an intact chain', async () => {
    const { entries, chain } = await auditEntries(cluster);
    expect(chain).toEqual({ ok: true, entries: entries.length });
    const jobs = (await call<{ jobs: JobRecord[] }>(cluster, 'GET', '/v1/jobs')).body.jobs;
    const [cancelled, failed] = jobs.map((j) => j.id);
    expect(entries.map((e) => `${e.action} ${e.target}`)).toEqual([
      'model.create mlp',
      `job.create ${failed}`,
      `job.create ${cancelled}`,
      `job.cancel ${cancelled}`,
    ]);
    expect(entries[1]).toMatchObject({
      actor: 'initial admin',
      details: { model: 'mlp', rounds: 2, roundTimeoutSec: 1 },
    });
  });
});

describe('enrollment and agents', () => {
  let cluster: TestCluster;
  let agentId: string;
  let shortLived: { token: string; expiresAt: string };

  beforeAll(async () => {
    cluster = await startTestCluster();
    // Expires while the tests below run; used at the end to show expiry is enforced.
    shortLived = (await newToken({ ttlSec: 1 })).body;
  });
  afterAll(async () => {
    await cluster?.close();
  });

  async function newToken(body: unknown = {}): Promise<Reply<{ token: string; expiresAt: string }>> {
    return call<{ token: string; expiresAt: string }>(cluster, 'POST', '/v1/enrollment-tokens', { body });
  }

  function enroll(token: string, csr: string, name = 'site-a') {
    return call<{ agentId: string; certificate: string; caCertificate: string; agentPort: number }>(
      cluster,
      'POST',
      '/v1/enroll',
      { token: null, body: { token, csr, name } },
    );
  }

  async function health(): Promise<{ backend: string; agentsConnected: number }> {
    return (
      await call<{ backend: string; agentsConnected: number }>(cluster, 'GET', '/healthz', { token: null })
    ).body;
  }

  async function listAgents(): Promise<ListedAgent[]> {
    const res = await call<{ agents: ListedAgent[] }>(cluster, 'GET', '/v1/agents');
    expect(res.status).toBe(200);
    return res.body.agents;
  }

  it('issues an enrollment token with its expiry (201)', async () => {
    const res = await newToken();
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['expiresAt', 'token']);
    expect(res.body.token).toMatch(/^loom1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}\.[0-9a-f]{64}$/);
    expect(Date.parse(res.body.expiresAt)).toBeGreaterThan(Date.now());

    const noBody = await call<{ token: string }>(cluster, 'POST', '/v1/enrollment-tokens');
    expect(noBody.status).toBe(201);
    expect(noBody.body.token).not.toBe(res.body.token);

    const short = await newToken({ ttlSec: 60 });
    expect(short.status).toBe(201);
    expect(Math.abs(Date.parse(short.body.expiresAt) - (Date.now() + 60_000))).toBeLessThan(10_000);
    expectError(
      await newToken({ ttlSec: 0 }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
      /^ttlSec must be at least 1/,
    );
    expectError(await newToken({ ttl: 60 }), 400, 'LOOM_ERR_INVALID_ARGUMENT', /^ttl is not a known field/);
  });

  it('does not burn a token on a garbage CSR (400 LOOM_ERR_CSR_INVALID), then enrolls once with it', async () => {
    const { token } = (await newToken()).body;
    expectError(await enroll(token, 'garbage'), 400, 'LOOM_ERR_CSR_INVALID');
    expectError(
      await enroll(token, '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'),
      400,
      'LOOM_ERR_CSR_INVALID',
    );

    const { csrPem } = createKeyAndCsr({ commonName: 'site-a' });
    const first = await enroll(token, csrPem);
    expect(first.status).toBe(201);
    expect(first.body.agentId).toMatch(/^agent-[0-9a-f]{12}$/);
    expect(first.body.certificate).toContain('-----BEGIN CERTIFICATE-----');
    expect(first.body.caCertificate).toBe(cluster.caPem);
    expect(first.body.agentPort).toBe(cluster.coordinator.agentPort);
    agentId = first.body.agentId;

    const second = await enroll(token, createKeyAndCsr({ commonName: 'site-b' }).csrPem, 'site-b');
    expectError(second, 401, 'LOOM_ERR_TOKEN_INVALID', /already used/);
  });

  it('refuses a malformed token, a wrong secret or a bad body without using the token up', async () => {
    const { csrPem } = createKeyAndCsr({ commonName: 'site-c' });
    expectError(
      await enroll('loom1.nope', csrPem),
      401,
      'LOOM_ERR_TOKEN_INVALID',
      /Malformed enrollment token/,
    );
    const { token } = (await newToken()).body;
    const parts = token.split('.');
    const wrongSecret = [parts[0], parts[1], 'A'.repeat(43), parts[3]].join('.');
    expectError(await enroll(wrongSecret, csrPem), 401, 'LOOM_ERR_TOKEN_INVALID', /different secret/);
    expectError(
      await call(cluster, 'POST', '/v1/enroll', { token: null, body: { token, csr: csrPem, extra: 1 } }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
      /^extra is not a known field/,
    );
    expectError(
      await call(cluster, 'POST', '/v1/enroll', { token: null, body: { csr: csrPem } }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
      /^token must be a string/,
    );
    expect((await enroll(token, csrPem, 'site-c')).status).toBe(201);
  });

  it('refuses a site name with control characters (ANSI escapes) without using the token up', async () => {
    const { token } = (await newToken()).body;
    const { csrPem } = createKeyAndCsr({ commonName: 'site-d' });
    for (const name of ['site\u001b[31m-red', 'site\nfake log line', 'bell\u0007', 'c1\u009b2J']) {
      expectError(await enroll(token, csrPem, name), 400, 'LOOM_ERR_INVALID_ARGUMENT', /^name must match/);
    }
    expect((await enroll(token, csrPem, 'site-d')).status).toBe(201);
  });

  it('refuses an expired enrollment token with 401', async () => {
    await waitUntil(() => Date.now() > Date.parse(shortLived.expiresAt), 5_000, 'the token to expire');
    const { csrPem } = createKeyAndCsr({ commonName: 'late' });
    expectError(await enroll(shortLived.token, csrPem, 'late'), 401, 'LOOM_ERR_TOKEN_INVALID', /expired at/);
  });

  it('shows an agent the same way alone and in the list, and pages and filters the list', async () => {
    const agents = await listAgents();
    for (const a of agents) {
      const one = await call<Record<string, unknown>>(cluster, 'GET', `/v1/agents/${a.id}`);
      expect(one.body).toEqual(a);
    }
    const first = await call<{ agents: ListedAgent[]; next?: string }>(cluster, 'GET', '/v1/agents?limit=1');
    expect(first.body.agents).toHaveLength(1);
    const rest = await call<{ agents: ListedAgent[] }>(cluster, 'GET', `/v1/agents?after=${first.body.next}`);
    expect([...first.body.agents, ...rest.body.agents].map((a) => a.id)).toEqual(agents.map((a) => a.id));
    const named = await call<{ agents: ListedAgent[] }>(cluster, 'GET', '/v1/agents?name=site-a');
    expect(named.body.agents.map((a) => a.name)).toEqual(['site-a']);
    const offline = await call<{ agents: ListedAgent[] }>(
      cluster,
      'GET',
      '/v1/agents?online=false&revoked=false',
    );
    expect(offline.body.agents.every((a) => !a.online && !a.revoked)).toBe(true);
  });

  it('lists enrolled agents as offline with their names', async () => {
    const agents = await listAgents();
    expect(agents.map((a) => a.name).sort()).toEqual(['site-a', 'site-c', 'site-d']);
    expect(agents.find((a) => a.id === agentId)).toMatchObject({
      id: agentId,
      name: 'site-a',
      online: false,
      lastSeen: null,
      backend: null,
      revoked: false,
      models: {},
    });
    const one = await call<AgentRecord & { online: boolean }>(cluster, 'GET', `/v1/agents/${agentId}`);
    expect(one.body).toMatchObject({ id: agentId, name: 'site-a', online: false, revoked: false });
  });

  it('revokes an agent, keeps the first revocation time, and answers 404 for an unknown agent', async () => {
    const res = await call<AgentRecord & { disconnected: boolean }>(
      cluster,
      'POST',
      `/v1/agents/${agentId}/revoke`,
      { body: {} },
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: agentId, revoked: true, disconnected: false });
    const revokedAt = res.body.revokedAt;
    expect(Date.parse(revokedAt ?? '')).not.toBeNaN();

    const agents = await listAgents();
    expect(agents.find((a) => a.id === agentId)?.revoked).toBe(true);
    expect(agents.find((a) => a.id !== agentId)?.revoked).toBe(false);

    const again = await call<AgentRecord>(cluster, 'POST', `/v1/agents/${agentId}/revoke`, { body: {} });
    expect(again.status).toBe(200);
    expect(again.body.revokedAt).toBe(revokedAt);

    expectError(
      await call(cluster, 'POST', '/v1/agents/agent-000000000000/revoke', { body: {} }),
      404,
      'LOOM_ERR_NOT_FOUND',
      /agent-000000000000/,
    );
    expectError(await call(cluster, 'GET', '/v1/agents/agent-000000000000'), 404, 'LOOM_ERR_NOT_FOUND');
  });

  it('counts a connected agent on /healthz, lists it online, and disconnects it on revocation', async () => {
    expect(await health()).toMatchObject({ backend: cluster.coordinator.backend.name, agentsConnected: 0 });
    await cluster.startAgent('edge-live', { offset: 0, count: 32 });
    await cluster.waitForAgents(1);
    expect((await health()).agentsConnected).toBe(1);
    const live = (await listAgents()).find((a) => a.name === 'edge-live');
    expect(live).toMatchObject({ online: true, revoked: false });
    expect(typeof live?.backend).toBe('string');
    expect(Date.parse(live?.lastSeen ?? '')).not.toBeNaN();

    const revoked = await call<AgentRecord & { disconnected: boolean }>(
      cluster,
      'POST',
      `/v1/agents/${live?.id}/revoke`,
      { body: {} },
    );
    expect(revoked.body).toMatchObject({ revoked: true, disconnected: true });
    await waitUntil(async () => (await health()).agentsConnected === 0, 10_000, 'the agent to drop');
    expect((await listAgents()).find((a) => a.name === 'edge-live')).toMatchObject({
      online: false,
      revoked: true,
    });
  });

  it('audits token creation, enrollment and revocation with an intact chain', async () => {
    const { entries, chain } = await auditEntries(cluster);
    expect(chain).toEqual({ ok: true, entries: entries.length });
    const count = (action: string): number => entries.filter((e) => e.action === action).length;
    expect(count('enrollment-token.create')).toBe(8);
    expect(count('agent.enroll')).toBe(4);
    expect(entries.filter((e) => e.action === 'agent.revoke').map((e) => e.target)).toEqual([
      agentId,
      agentId,
      expect.stringMatching(/^agent-/),
    ]);
    expect(entries.find((e) => e.action === 'agent.revoke')).toMatchObject({
      actor: 'initial admin',
      details: { online: false },
    });
    // Paging: entries after the first one.
    const page = await call<{ entries: AuditEntry[] }>(cluster, 'GET', '/v1/audit?after=1&limit=2');
    expect(page.body.entries.map((e) => e.seq)).toEqual([2, 3]);
    expectError(await call(cluster, 'GET', '/v1/audit?limit=abc'), 400, 'LOOM_ERR_INVALID_ARGUMENT');
  });
});

/** The operator API of a running test cluster as ApiDeps, for apps built with other options. */
function depsOf(cluster: TestCluster, log: Logger): ApiDeps {
  const c = cluster.coordinator;
  return {
    registry: c.registry,
    jobs: c.jobs,
    agents: c.agents,
    tokens: c.tokens,
    audit: c.audit,
    enrollment: c.enrollment,
    deployments: c.deployments,
    rollouts: c.rollouts,
    retirements: c.retirements,
    evaluations: c.evaluations,
    lifecycle: c.lifecycle,
    gateway: c.gateway,
    caCertPem: cluster.caPem,
    caFingerprint: c.caFingerprint,
    revocations: c.revocations,
    agentPort: () => c.agentPort,
    backend: () => c.backend.name,
    log,
  };
}

/** A logger that keeps what it is given, so tests can see what reached the server log. */
function recordingLogger(): Logger & {
  lines: { level: string; msg: string; fields?: Record<string, unknown> }[];
} {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const log = {
    lines,
    debug: (msg: string, fields?: Record<string, unknown>) => lines.push({ level: 'debug', msg, fields }),
    info: (msg: string, fields?: Record<string, unknown>) => lines.push({ level: 'info', msg, fields }),
    warn: (msg: string, fields?: Record<string, unknown>) => lines.push({ level: 'warn', msg, fields }),
    error: (msg: string, fields?: Record<string, unknown>) => lines.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  return log;
}

interface TokenView {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  revoked: boolean;
  revokedAt?: string;
}

describe('API tokens', () => {
  let cluster: TestCluster;
  let initialAdminId: string;

  beforeAll(async () => {
    cluster = await startTestCluster();
    initialAdminId = cluster.adminToken.split('_')[1];
  });
  afterAll(async () => {
    await cluster?.close();
  });

  async function createToken(
    body: unknown,
    token?: string,
  ): Promise<Reply<{ id: string; token: string; role: Role; name: string }>> {
    return call(cluster, 'POST', '/v1/tokens', { body, ...(token ? { token } : {}) });
  }

  async function listTokens(): Promise<TokenView[]> {
    const res = await call<{ tokens: TokenView[] }>(cluster, 'GET', '/v1/tokens');
    expect(res.status).toBe(200);
    return res.body.tokens;
  }

  it('lets an admin create a token of each role, shown once, that works with that role at once', async () => {
    const made: Record<string, string> = {};
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      const res = await createToken({ name: `ci ${role}`, role });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual(['id', 'name', 'role', 'token']);
      expect(res.body).toMatchObject({ role, name: `ci ${role}` });
      expect(res.body.token).toMatch(new RegExp(`^loom_${res.body.id}_[0-9a-f]{64}$`));
      made[role] = res.body.token;
    }
    expect((await call(cluster, 'GET', '/v1/models', { token: made.viewer })).status).toBe(200);
    expectError(
      await call(cluster, 'POST', '/v1/enrollment-tokens', { token: made.viewer, body: {} }),
      403,
      'LOOM_ERR_FORBIDDEN',
    );
    expect(
      (await call(cluster, 'POST', '/v1/enrollment-tokens', { token: made.operator, body: {} })).status,
    ).toBe(201);
    expect((await call(cluster, 'GET', '/v1/tokens', { token: made.admin })).status).toBe(200);
    // The stored record holds a hash, never the token.
    const stored = await cluster.coordinator.tokens.getApiToken(made.operator.split('_')[1]);
    expect(stored?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain(made.operator.split('_')[2]);
  });

  it('lists tokens with id, name, role and state but no secret or hash', async () => {
    const res = await call<{ tokens: TokenView[] }>(cluster, 'GET', '/v1/tokens');
    expect(res.status).toBe(200);
    expect(res.body.tokens.map((t) => t.role).sort()).toEqual(['admin', 'admin', 'operator', 'viewer']);
    for (const t of res.body.tokens) {
      expect(Object.keys(t).sort()).toEqual(['createdAt', 'id', 'name', 'revoked', 'role']);
    }
    const text = JSON.stringify(res.body);
    expect(text).not.toContain(cluster.adminToken.split('_')[2]);
    for (const record of await cluster.coordinator.tokens.listApiTokens())
      expect(text).not.toContain(record.hash);
  });

  it('refuses bad bodies with 400 naming the field and creates nothing', async () => {
    const before = (await listTokens()).length;
    const cases: [unknown, RegExp][] = [
      [{ role: 'viewer' }, /^name must be a string/],
      [{ name: '', role: 'viewer' }, /^name must not be empty/],
      [{ name: 'x'.repeat(65), role: 'viewer' }, /^name must be at most 64 characters/],
      [{ name: 'tab\there', role: 'viewer' }, /^name must match/],
      [{ name: 'root', role: 'root' }, /^role must be one of admin, operator, viewer/],
      [{ name: 'root' }, /^role must be a string/],
      [{ name: 'x', role: 'viewer', secret: 'mine' }, /^secret is not a known field/],
    ];
    for (const [body, message] of cases) {
      expectError(await createToken(body), 400, 'LOOM_ERR_INVALID_ARGUMENT', message);
    }
    expect(await listTokens()).toHaveLength(before);
  });

  it('refuses operators and viewers on every token route with 403', async () => {
    const operator = await addToken(cluster, 'operator');
    const viewer = await addToken(cluster, 'viewer');
    for (const token of [operator, viewer]) {
      expectError(
        await createToken({ name: 'sneaky', role: 'admin' }, token),
        403,
        'LOOM_ERR_FORBIDDEN',
        /admin/,
      );
      expectError(await call(cluster, 'GET', '/v1/tokens', { token }), 403, 'LOOM_ERR_FORBIDDEN');
      expectError(
        await call(cluster, 'POST', `/v1/tokens/${initialAdminId}/revoke`, { token, body: {} }),
        403,
        'LOOM_ERR_FORBIDDEN',
      );
    }
  });

  it('revokes a token so its next call gets 401, keeps the first revocation time, and 404s an unknown id', async () => {
    const made = (await createToken({ name: 'short-lived', role: 'operator' })).body;
    expect((await call(cluster, 'GET', '/v1/models', { token: made.token })).status).toBe(200);
    const res = await call<TokenView>(cluster, 'POST', `/v1/tokens/${made.id}/revoke`, { body: {} });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: made.id, name: 'short-lived', role: 'operator', revoked: true });
    expect(Date.parse(res.body.revokedAt ?? '')).not.toBeNaN();
    expectError(
      await call(cluster, 'GET', '/v1/models', { token: made.token }),
      401,
      'LOOM_ERR_UNAUTHORIZED',
      /invalid bearer token/,
    );
    const again = await call<TokenView>(cluster, 'POST', `/v1/tokens/${made.id}/revoke`, { body: {} });
    expect(again.body.revokedAt).toBe(res.body.revokedAt);
    expect((await listTokens()).find((t) => t.id === made.id)).toMatchObject({ revoked: true });
    expectError(
      await call(cluster, 'POST', '/v1/tokens/000000000000/revoke', { body: {} }),
      404,
      'LOOM_ERR_NOT_FOUND',
      /000000000000/,
    );
  });

  it('refuses to revoke the last admin token with 409, so nobody locks themselves out', async () => {
    // Leave exactly one live admin: revoke every other one.
    for (const t of await listTokens()) {
      if (t.role === 'admin' && !t.revoked && t.id !== initialAdminId) {
        expect((await call(cluster, 'POST', `/v1/tokens/${t.id}/revoke`, { body: {} })).status).toBe(200);
      }
    }
    expectError(
      await call(cluster, 'POST', `/v1/tokens/${initialAdminId}/revoke`, { body: {} }),
      409,
      'LOOM_ERR_CONFLICT',
      /last admin token/,
    );
    expect((await call(cluster, 'GET', '/v1/tokens')).status).toBe(200);

    // With a second admin, the first can go; then the second is the last one.
    const second = (await createToken({ name: 'successor', role: 'admin' })).body;
    expect((await call(cluster, 'POST', `/v1/tokens/${initialAdminId}/revoke`, { body: {} })).status).toBe(
      200,
    );
    expectError(await call(cluster, 'GET', '/v1/tokens'), 401, 'LOOM_ERR_UNAUTHORIZED');
    expectError(
      await call(cluster, 'POST', `/v1/tokens/${second.id}/revoke`, { token: second.token, body: {} }),
      409,
      'LOOM_ERR_CONFLICT',
    );

    // Two admins revoking each other at once: exactly one revocation wins.
    const third = (await createToken({ name: 'third', role: 'admin' }, second.token)).body;
    const replies = await Promise.all([
      call(cluster, 'POST', `/v1/tokens/${third.id}/revoke`, { token: second.token, body: {} }),
      call(cluster, 'POST', `/v1/tokens/${second.id}/revoke`, { token: third.token, body: {} }),
    ]);
    // The loser is refused as the last admin (409) or, if the winner revoked its token before its
    // call was authenticated, as unauthenticated (401); either way one admin remains.
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses[0]).toBe(200);
    expect([401, 409]).toContain(statuses[1]);
    const live = (await cluster.coordinator.tokens.listApiTokens()).filter(
      (t) => t.role === 'admin' && !t.revoked,
    );
    expect(live).toHaveLength(1);
  });

  it('audits every token created and revoked, without secrets, in an intact chain', async () => {
    const admin = (await cluster.coordinator.tokens.listApiTokens()).find(
      (t) => t.role === 'admin' && !t.revoked,
    );
    expect(admin).toBeDefined();
    const fresh = createApiToken();
    await cluster.coordinator.tokens.addApiToken({
      ...admin!,
      id: fresh.id,
      hash: fresh.hash,
      name: 'auditor',
    });
    const res = await call<{ entries: AuditEntry[]; chain: AuditVerification }>(
      cluster,
      'GET',
      '/v1/audit?limit=1000',
      {
        token: fresh.token,
      },
    );
    expect(res.body.chain).toEqual({ ok: true, entries: res.body.entries.length });
    const creates = res.body.entries.filter((e) => e.action === 'api-token.create');
    const revokes = res.body.entries.filter((e) => e.action === 'api-token.revoke');
    expect(creates.map((e) => e.details?.role)).toEqual([
      'admin', // the initial admin token, made by init
      'viewer',
      'operator',
      'admin',
      'operator',
      'admin',
      'admin',
    ]);
    expect(creates[1]).toMatchObject({
      actor: 'initial admin',
      details: { name: 'ci viewer', role: 'viewer' },
    });
    expect(revokes.length).toBeGreaterThanOrEqual(4);
    expect(revokes.map((e) => e.target)).toContain(initialAdminId);
    expect(JSON.stringify(res.body.entries)).not.toMatch(/loom_[0-9a-f]{12}_[0-9a-f]{64}/);
  });
});

describe('abuse limits and error hygiene', () => {
  let cluster: TestCluster;
  // Every POST /v1/enroll from this file's address counts against the rate limit tested below.
  let enrollCalls = 0;

  function enrollCall(body: unknown): Promise<Reply<ErrorBody>> {
    enrollCalls++;
    return call<ErrorBody>(cluster, 'POST', '/v1/enroll', { token: null, body });
  }

  beforeAll(async () => {
    cluster = await startTestCluster();
  });
  afterAll(async () => {
    await cluster?.close();
  });

  function post(path: string, body: Buffer, token: string | null): Promise<HttpResponse> {
    return httpRequestRaw(`${cluster.apiUrl}${path}`, {
      method: 'POST',
      ca: cluster.caPem,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body,
    });
  }

  it('refuses a 1 MiB body to /v1/enroll and the other small routes with 413, but not to POST /v1/models', async () => {
    const big = Buffer.from(JSON.stringify({ token: 'x', csr: 'y'.repeat(1024 * 1024) }));
    for (const [path, token] of [
      ['/v1/enroll', null],
      ['/v1/enrollment-tokens', cluster.adminToken],
      ['/v1/jobs', cluster.adminToken],
      ['/v1/tokens', cluster.adminToken],
      ['/v1/agents/agent-000000000000/revoke', cluster.adminToken],
    ] as const) {
      const res = await post(path, big, token);
      expect(res.status, path).toBe(413);
      expect(JSON.parse(res.body.toString('utf8'))).toMatchObject({
        error: { code: 'LOOM_ERR_FRAME_TOO_LARGE' },
      });
    }
    // A model upload may be large: this one gets as far as field validation.
    const upload = Buffer.from(
      JSON.stringify({ name: 'big', architecture: MLP, weights: 'A'.repeat(1024 * 1024) }),
    );
    const res = await post('/v1/models', upload, cluster.adminToken);
    expect(res.status).toBe(400);
    expect(res.body.toString('utf8')).toMatch(/weights is only accepted with a tfjs architecture/);
  });

  it('checks the enrollment token before the CSR, so a wrong secret with any CSR is a 401', async () => {
    const { token } = await cluster.api<{ token: string }>('/v1/enrollment-tokens', {});
    const parts = token.split('.');
    const wrongSecret = [parts[0], parts[1], 'A'.repeat(43), parts[3]].join('.');
    expectError(
      await enrollCall({ token: wrongSecret, csr: 'garbage' }),
      401,
      'LOOM_ERR_TOKEN_INVALID',
      /different secret/,
    );
    const unknown = ['loom1', '0123456789abcdef', parts[2], parts[3]].join('.');
    expectError(
      await enrollCall({ token: unknown, csr: 'garbage' }),
      401,
      'LOOM_ERR_TOKEN_INVALID',
      /is unknown/,
    );
    // The real token was not used up by either attempt, and a bad CSR still does not burn it.
    expectError(await enrollCall({ token, csr: 'garbage' }), 400, 'LOOM_ERR_CSR_INVALID');
  });

  it('records the socket address of an enrollment in the audit log, not X-Forwarded-For', async () => {
    const { token } = await cluster.api<{ token: string }>('/v1/enrollment-tokens', {});
    const { csrPem } = createKeyAndCsr({ commonName: 'forwarded' });
    enrollCalls++;
    const res = await httpRequestRaw(`${cluster.apiUrl}/v1/enroll`, {
      method: 'POST',
      ca: cluster.caPem,
      headers: { 'x-forwarded-for': '198.51.100.7' },
      body: { token, csr: csrPem, name: 'forwarded' },
    });
    expect(res.status).toBe(201);
    const { entries } = await auditEntries(cluster);
    const enroll = entries.find((e) => e.action === 'agent.enroll');
    expect(enroll?.details?.remote).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
    expect(JSON.stringify(entries)).not.toContain('198.51.100.7');
  });

  it('validates audit paging: bad after or limit is a 400, and a large limit is capped', async () => {
    for (const query of ['after=-1', 'after=1.5', 'after=x', 'limit=0', 'limit=-3', 'limit=2e3', 'limit=']) {
      expectError(await call(cluster, 'GET', `/v1/audit?${query}`), 400, 'LOOM_ERR_INVALID_ARGUMENT');
    }
    const capped = await call<{ entries: AuditEntry[] }>(cluster, 'GET', '/v1/audit?limit=1000000');
    expect(capped.status).toBe(200);
    expect(capped.body.entries.length).toBeGreaterThan(0);
    expect(capped.body.entries.length).toBeLessThanOrEqual(API_DEFAULTS.maxAuditPage);
    expect(API_DEFAULTS.maxAuditPage).toBe(1000);
  });

  it('limits POST /v1/enroll per address: the 21st request in a minute gets 429 LOOM_ERR_RATE_LIMITED', async () => {
    // Earlier tests in this block made some enroll calls from this address; they count too.
    const bad = { token: 'loom1.nope', csr: 'x' };
    let refused: Reply<ErrorBody> | undefined;
    let allowed = enrollCalls;
    for (let i = 0; i < 30 && !refused; i++) {
      const res = await enrollCall(bad);
      if (res.status === 429) refused = res;
      else {
        expect(res.status).toBe(401);
        allowed++;
      }
    }
    expect(allowed).toBe(RATE_LIMIT_DEFAULTS.max);
    expect(refused).toBeDefined();
    expectError(refused!, 429, 'LOOM_ERR_RATE_LIMITED', /too many requests/);
    // Authenticated routes and the CA are not limited.
    expect((await call(cluster, 'GET', '/v1/ca', { token: null })).status).toBe(200);
    expect((await call(cluster, 'POST', '/v1/enrollment-tokens', { body: {} })).status).toBe(201);
  });

  it('keeps one budget per remote address, takes its limits from the options, and can be turned off', async () => {
    const app = createApiApp(depsOf(cluster, createLogger('silent')), {
      enrollRateLimit: { max: 2, windowMs: 60_000 },
    });
    const enroll = (address: string) =>
      app.request(
        '/v1/enroll',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"token":"loom1.x","csr":"x"}',
        },
        { incoming: { socket: { remoteAddress: address } } },
      );
    expect((await enroll('203.0.113.1')).status).toBe(401);
    expect((await enroll('203.0.113.1')).status).toBe(401);
    const limited = await enroll('203.0.113.1');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await limited.json()) as ErrorBody).toMatchObject({ error: { code: 'LOOM_ERR_RATE_LIMITED' } });
    expect((await enroll('203.0.113.2')).status).toBe(401);

    const unlimited = createApiApp(depsOf(cluster, createLogger('silent')), { enrollRateLimit: false });
    for (let i = 0; i < RATE_LIMIT_DEFAULTS.max + 5; i++) {
      const res = await unlimited.request('/v1/enroll', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"token":"loom1.x","csr":"x"}',
      });
      expect(res.status).toBe(401);
    }
  });

  it('forgets the oldest addresses beyond maxAddresses, so a flood of addresses cannot grow memory', () => {
    const limiter = new FixedWindowRateLimiter({ max: 1, windowMs: 1000, maxAddresses: 3 });
    for (const a of ['a', 'b', 'c', 'd']) expect(limiter.take(a, 0)).toEqual({ allowed: true });
    expect(limiter.size).toBe(3);
    expect(limiter.take('d', 10)).toEqual({ allowed: false, retryAfterSec: 1 });
    // 'a' was forgotten, so it starts a new window; a window also restarts once it has passed.
    expect(limiter.take('a', 10)).toEqual({ allowed: true });
    expect(limiter.take('d', 1000)).toEqual({ allowed: true });
    expect(() => new FixedWindowRateLimiter({ max: 0 })).toThrow(TypeError);
  });

  it('logs a store failure with its cause and answers 500 with the code and a generic message', async () => {
    const log = recordingLogger();
    const app = createApiApp(depsOf(cluster, log));
    // A stopped coordinator has closed its database, so every store call fails.
    await cluster.coordinator.stop();
    const res = await app.request('/v1/models', {
      headers: { authorization: `Bearer ${cluster.adminToken}` },
    });
    expect(res.status).toBe(500);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe('LOOM_ERR_STORE');
    expect(body.error.message).toBe('the coordinator store failed; see the coordinator log');
    const logged = log.lines.find((l) => l.level === 'error');
    expect(logged?.fields).toMatchObject({ code: 'LOOM_ERR_STORE', path: '/v1/models' });
    expect(String(logged?.fields?.error)).toMatch(/store failure while trying to read API token/);
    expect(String(logged?.fields?.cause)).toMatch(/not open/i);
  });
});

describe('HTTP client', () => {
  it('keeps a remote error code only when Loom knows it, else LOOM_ERR_NETWORK with the remote code in details', async () => {
    const server = createHttpServer((req, res) => {
      const code = req.url === '/known' ? 'LOOM_ERR_NOT_FOUND' : 'LOOM_ERR_MADE_UP';
      res.writeHead(req.url === '/known' ? 404 : 418, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code, message: 'remote says no' } }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await expect(requestJson(`${base}/known`)).rejects.toMatchObject({
        code: 'LOOM_ERR_NOT_FOUND',
        message: 'remote says no',
      });
      const err = await requestJson(`${base}/unknown`).catch((e: unknown) => e);
      expect(isLoomError(err, 'LOOM_ERR_NETWORK')).toBe(true);
      expect((err as LoomError).details).toEqual({ status: 418, remoteCode: 'LOOM_ERR_MADE_UP' });
      expect((err as LoomError).message).toMatch(/HTTP 418: remote says no/);
    } finally {
      server.close();
    }
  });
});

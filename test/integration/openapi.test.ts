// The OpenAPI document the coordinator publishes at GET /v1/openapi.json, read over real HTTPS
// from a real coordinator: valid OpenAPI 3.1 in shape, complete (every route the app registers
// is in it, and nothing else), and the refusals it documents are the ones callers get.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../certs/index.ts';
import { type ApiDeps, createApiApp } from '../../coordinator/api/index.ts';
import type { Role } from '../../coordinator/directory/index.ts';
import { httpRequestRaw } from '../../shared/http/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';

interface Operation {
  summary?: string;
  description?: string;
  security?: unknown[];
  parameters?: { name: string; in: string; required?: boolean }[];
  requestBody?: { required?: boolean; content: Record<string, { schema: unknown }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }>;
    securitySchemes: Record<string, { type: string; scheme?: string }>;
  };
}

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

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

describe('GET /v1/openapi.json', () => {
  let cluster: TestCluster;
  let viewer: string;
  let doc: OpenApiDocument;

  async function call(
    method: string,
    path: string,
    body?: unknown,
    token: string | null = cluster.adminToken,
  ) {
    const res = await httpRequestRaw(`${cluster.apiUrl}${path}`, {
      method,
      ca: cluster.caPem,
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { body }),
    });
    return { status: res.status, body: JSON.parse(res.body.toString('utf8')) as Record<string, unknown> };
  }

  beforeAll(async () => {
    cluster = await startTestCluster();
    viewer = await addToken(cluster, 'viewer');
    const res = await call('GET', '/v1/openapi.json', undefined, viewer);
    expect(res.status).toBe(200);
    doc = res.body as unknown as OpenApiDocument;
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('is an OpenAPI 3.1 document with a bearer scheme and the error schema', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: 'v1' });
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    const error = doc.components.schemas.Error;
    expect(error.required).toEqual(['error']);
    expect(error.properties?.error).toMatchObject({
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    });
    for (const [path, item] of Object.entries(doc.paths)) {
      expect(path).toMatch(/^\/(healthz|v1\/)/);
      for (const [method, op] of Object.entries(item)) {
        expect(METHODS, `${method} ${path}`).toContain(method);
        expect(op.summary, `${method} ${path}`).toBeTruthy();
        // Every operation documents its failures with the one error schema.
        expect(op.responses.default?.content?.['application/json']?.schema, `${method} ${path}`).toEqual({
          $ref: '#/components/schemas/Error',
        });
        expect(
          Object.keys(op.responses).some((s) => /^2\d\d$/.test(s)),
          `${method} ${path}`,
        ).toBe(true);
        // Each {param} of the path is a documented, required path parameter.
        for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
          expect(
            op.parameters?.some((p) => p.in === 'path' && p.name === name && p.required),
            `${method} ${path} :${name}`,
          ).toBe(true);
        }
      }
    }
  });

  it("refuses a token below each route's role, and lets each role reach the routes at its level", async () => {
    const operator = await addToken(cluster, 'operator');
    const tokens: Record<Role, string> = { viewer, operator, admin: cluster.adminToken };
    const below: Record<Role, Role[]> = { viewer: [], operator: ['viewer'], admin: ['viewer', 'operator'] };
    let checked = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const role = /Needs the (viewer|operator|admin) role/.exec(op.description ?? '')?.[1] as
          | Role
          | undefined;
        if (!role) continue;
        // Nothing a viewer may call changes anything.
        if (method !== 'get') expect(role, `${method} ${path}`).not.toBe('viewer');
        // Path parameters that name nothing: the role is checked before anything is looked up.
        const url = path.replace(/\{[^}]+\}/g, 'nothing-here');
        const body = ['post', 'put', 'patch'].includes(method) ? {} : undefined;
        for (const lower of below[role]) {
          const res = await call(method.toUpperCase(), url, body, tokens[lower]);
          expect(res.status, `${lower} → ${method} ${path}`).toBe(403);
          expect((res.body.error as { code: string }).code).toBe('LOOM_ERR_FORBIDDEN');
        }
        const allowed = await call(method.toUpperCase(), url, body, tokens[role]);
        expect([401, 403], `${role} → ${method} ${path}`).not.toContain(allowed.status);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(30);
  });

  it('describes every route the API registers, and no route it does not', () => {
    // The app the coordinator serves, built by the same function; routes need none of the
    // services to be registered, so none are given.
    const app = createApiApp({ log: createLogger('silent') } as unknown as ApiDeps);
    const registered = new Set(
      app.routes
        .filter((r) => r.method !== 'ALL')
        .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`),
    );
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m} ${path}`)),
    );
    expect([...registered].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((d) => !registered.has(d))).toEqual([]);
    for (const route of [
      'post /v1/jobs',
      'post /v1/rollouts',
      'put /v1/models/{name}/policy',
      'get /v1/openapi.json',
    ]) {
      expect(documented).toContain(route);
    }
  });

  it('documents who may call each route: none for the public ones, a bearer token for the rest', () => {
    const publicRoutes = ['get /healthz', 'get /v1/ca', 'post /v1/enroll'];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const key = `${method} ${path}`;
        if (publicRoutes.includes(key)) expect(op.security, key).toEqual([]);
        else {
          expect(op.security, key).toEqual([{ bearerAuth: [] }]);
          expect(op.responses['401'], key).toBeDefined();
        }
      }
    }
    expect(doc.paths['/v1/tokens'].post.responses['403']).toBeDefined();
    expect(doc.paths['/v1/rollouts'].post.responses['403']).toBeDefined();
    expect(doc.paths['/v1/rollouts'].get.responses['403']).toBeUndefined();
  });

  it('describes the bodies with their fields, limits and closed key sets', () => {
    const schemaOf = (path: string, method: string) =>
      doc.paths[path][method].requestBody?.content['application/json'].schema as {
        properties: Record<string, Record<string, unknown>>;
        required?: string[];
        additionalProperties?: boolean;
      };
    const job = schemaOf('/v1/jobs', 'post');
    expect(job.required).toEqual(['model']);
    expect(job.additionalProperties).toBe(false);
    expect(job.properties.rounds).toMatchObject({ type: 'integer', minimum: 1, maximum: 100_000 });
    expect(job.properties.engine).toMatchObject({ enum: ['typed-array', 'tfjs'] });
    expect(job.properties.labels).toMatchObject({ type: 'object', maxProperties: 32 });
    const evaluation = schemaOf('/v1/models/{name}/versions/{version}/evaluations', 'post');
    expect(Object.keys(evaluation.properties).sort()).toEqual([
      'agents',
      'labels',
      'minClients',
      'timeoutSec',
    ]);
    const rollout = schemaOf('/v1/rollouts', 'post');
    expect(rollout.required).toEqual(expect.arrayContaining(['model', 'version', 'target']));
    expect(schemaOf('/v1/tokens', 'post').properties.role).toMatchObject({
      enum: ['admin', 'operator', 'viewer'],
    });
    const list = doc.paths['/v1/agents'].get.parameters?.map((p) => `${p.in}:${p.name}`);
    expect(list).toEqual([
      'query:limit',
      'query:after',
      'query:online',
      'query:revoked',
      'query:name',
      'query:label',
    ]);
  });

  it('answers refusals in the documented error format, naming the field', async () => {
    const cases: [string, string, unknown, number, string, RegExp][] = [
      [
        'POST',
        '/v1/jobs',
        { model: 'm', rounds: 0 },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^rounds must be at least 1/,
      ],
      [
        'POST',
        '/v1/jobs',
        { model: 'm', labels: { 'bad key': 'x' } },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^labels\.bad key/,
      ],
      [
        'POST',
        '/v1/rollouts',
        { model: 'm', version: 1, target: { all: true }, waves: [50] },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^waves must end at 100/,
      ],
      [
        'POST',
        '/v1/rollouts',
        { model: 'm', version: 1, target: { all: true, agents: ['a'] } },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^target must have exactly one of all, labels or agents/,
      ],
      [
        'POST',
        '/v1/tokens',
        { name: 'x', role: 'root' },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^role must be one of/,
      ],
      [
        'PUT',
        '/v1/models/m/aliases/champion',
        { version: 1, note: 'x' },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^note is not a known field \(expected one of: version\)/,
      ],
      [
        'PUT',
        '/v1/models/m/policy',
        { metric: 'loss', min: 0.1 },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^min is for accuracy/,
      ],
      [
        'POST',
        '/v1/models/m/versions/1/retire',
        { successor: 0 },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^successor must be at least 1/,
      ],
      [
        'POST',
        '/v1/models/m/versions/x/retire',
        { successor: 2 },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^version "x" is not a positive integer/,
      ],
      [
        'POST',
        '/v1/rollouts/r/pause',
        { now: true },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^now is not a known field/,
      ],
      [
        'GET',
        '/v1/agents?colour=red',
        undefined,
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^colour is not a query parameter/,
      ],
      [
        'GET',
        '/v1/openapi.json?x=1',
        undefined,
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /^x is not a query parameter/,
      ],
      ['POST', '/v1/jobs', [1], 400, 'LOOM_ERR_INVALID_ARGUMENT', /must be a JSON object/],
    ];
    for (const [method, path, body, status, code, message] of cases) {
      const res = await call(method, path, body);
      const what = `${method} ${path} ${JSON.stringify(body)}`;
      expect(res.status, what).toBe(status);
      expect(Object.keys(res.body), what).toEqual(['error']);
      const error = res.body.error as Record<string, unknown>;
      expect(Object.keys(error).sort(), what).toEqual(['code', 'message']);
      expect(error.code, what).toBe(code);
      expect(error.message, what).toMatch(message);
    }
  });

  it('is readable with any valid token and refused without one', async () => {
    expect((await call('GET', '/v1/openapi.json', undefined, null)).status).toBe(401);
    const operator = await addToken(cluster, 'operator');
    const again = await call('GET', '/v1/openapi.json', undefined, operator);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(doc);
  });
});

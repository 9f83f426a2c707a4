// Registry stages, aliases, tags and descriptions through the operator API of a real coordinator
// (TLS, LevelDB) with a real agent: one production version per model, promotion rolls it out,
// forced moves are admin-only and audited, everything survives a restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../certs/index.ts';
import type { Role } from '../../coordinator/directory/index.ts';
import type { LifecycleView } from '../../coordinator/lifecycle/index.ts';
import type { VersionRecord } from '../../coordinator/registry/index.ts';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import { httpRequestRaw } from '../../shared/http/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';
import { type RogueAgent, startRogueAgent } from '../helpers/rogue-agent.ts';

/** A report of `right` of 10 hold-out examples right (10 classes), as an agent sends it. */
function tenExamples(right: number) {
  return {
    numExamples: 10,
    loss: 1 - right / 10 + 0.1,
    accuracy: right / 10,
    confusion: Array.from({ length: 10 }, (_, t) =>
      Array.from({ length: 10 }, (_, p) =>
        t === 0 && p === 0 ? right : t === 0 && p === 1 ? 10 - right : 0,
      ),
    ),
    evalMs: 1,
  };
}

const ARCH: ModelArchitecture = { kind: 'mlp', inputShape: [784], layers: [8, 10], activation: 'relu' };

type Version = VersionRecord & LifecycleView & { rollout?: string | null };
interface Reply<T> {
  status: number;
  body: T;
}
type ErrorReply = { error: { code: string; message: string } };

async function call<T>(
  cluster: TestCluster,
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown } = {},
): Promise<Reply<T>> {
  const token = opts.token === undefined ? cluster.adminToken : opts.token;
  const res = await httpRequestRaw(`${cluster.apiUrl}${path}`, {
    method,
    ca: cluster.caPem,
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    ...(opts.body === undefined ? {} : { body: opts.body }),
  });
  const text = res.body.toString('utf8');
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

function expectError(reply: Reply<unknown>, status: number, code: string, message?: RegExp): void {
  expect(reply.status).toBe(status);
  const body = reply.body as ErrorReply;
  expect(body.error.code).toBe(code);
  if (message) expect(body.error.message).toMatch(message);
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

describe('model lifecycle in the registry', () => {
  let cluster: TestCluster;
  let agent: EdgeAgent;
  let viewer: string;
  let operator: string;

  const version = async (ref: number | string): Promise<Version> => {
    const reply = await call<Version>(cluster, 'GET', `/v1/models/digits/versions/${ref}`);
    expect(reply.status).toBe(200);
    return reply.body;
  };
  const stage = (ref: number | string, body: unknown, token?: string) =>
    call<Version>(cluster, 'POST', `/v1/models/digits/versions/${ref}/stage`, {
      body,
      ...(token ? { token } : {}),
    });
  /** Waits until the rollout `id` completed; its record. */
  const rolloutDone = async (id: string): Promise<Record<string, unknown>> => {
    let last: Record<string, unknown> = {};
    await waitUntil(
      async () => {
        last = (await call<Record<string, unknown>>(cluster, 'GET', `/v1/rollouts/${id}`)).body;
        return last.state === 'completed';
      },
      20_000,
      `rollout ${id} to complete`,
    );
    return last;
  };
  const audit = async (action: string) =>
    (
      await call<{
        entries: { actor: string; action: string; target: string; details?: Record<string, unknown> }[];
      }>(cluster, 'GET', `/v1/audit?limit=1000&action=${action}`)
    ).body.entries;

  beforeAll(async () => {
    cluster = await startTestCluster();
    agent = await cluster.startAgent('site-a', { offset: 0, count: 50 });
    await cluster.waitForAgents(1);
    viewer = await addToken(cluster, 'viewer');
    operator = await addToken(cluster, 'operator');
    expect(
      (await call(cluster, 'POST', '/v1/models', { body: { name: 'digits', architecture: ARCH } })).status,
    ).toBe(201);
    // Versions 2 and 3, as jobs would write them.
    const { registry } = cluster.coordinator;
    const weights = await registry.getWeights('digits', 1);
    for (const parent of [1, 2]) {
      await registry.addVersion({
        model: 'digits',
        parentVersion: parent,
        jobId: null,
        round: null,
        agents: [],
        exampleCounts: {},
        metrics: {},
        weights,
      });
    }
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('gives a new version stage none, no aliases and no tags', async () => {
    expect(await version(2)).toMatchObject({ version: 2, stage: 'none', aliases: [], tags: {} });
    const list = (await call<{ versions: Version[] }>(cluster, 'GET', '/v1/models/digits/versions')).body
      .versions;
    expect(list.map((v) => v.stage)).toEqual(['none', 'none', 'none']);
  });

  it('sets a description and tags (null removes one), audited; viewers may not', async () => {
    const path = '/v1/models/digits/versions/2';
    const first = await call<Version>(cluster, 'PATCH', path, {
      token: operator,
      body: { description: 'first federated model', tags: { dataset: 'mnist', owner: 'ml-team' } },
    });
    expect(first.status).toBe(200);
    const second = await call<Version>(cluster, 'PATCH', path, {
      body: { tags: { owner: null, lr: '0.1' } },
    });
    expect(second.body).toMatchObject({
      description: 'first federated model',
      tags: { dataset: 'mnist', lr: '0.1' },
    });
    expect(second.body.tags).not.toHaveProperty('owner');
    expect((await audit('version.update')).map((e) => e.target)).toEqual(['digits@2', 'digits@2']);
    expectError(
      await call(cluster, 'PATCH', path, { token: viewer, body: { description: 'x' } }),
      403,
      'LOOM_ERR_FORBIDDEN',
    );
    expectError(await call(cluster, 'PATCH', path, { body: {} }), 400, 'LOOM_ERR_INVALID_ARGUMENT');
    expectError(
      await call(cluster, 'PATCH', path, { body: { tags: { 'bad key': 'v' } } }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
    );
    expectError(
      await call(cluster, 'PATCH', path, { body: { tags: { k: 5 } } }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
    );
    expectError(
      await call(cluster, 'PATCH', path, { body: { stage: 'production' } }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
    );
    expectError(
      await call(cluster, 'PATCH', '/v1/models/digits/versions/9', { body: { description: 'x' } }),
      404,
      'LOOM_ERR_NOT_FOUND',
    );
  });

  it('promotes to production through a rollout that reaches the agents', async () => {
    const reply = await stage(2, { stage: 'production', rollout: { healthWindowSec: 0 } }, operator);
    expect(reply.status).toBe(200);
    expect(reply.body.stage).toBe('production');
    expect(reply.body.rollout).toMatch(/^rollout-/);
    await waitUntil(
      () => agent.status().models.some((m) => m.name === 'digits' && m.version === 2),
      20_000,
      'the promoted version at the agent',
    );
    const done = await rolloutDone(reply.body.rollout!);
    expect(done).toMatchObject({
      version: 2,
      target: { all: true },
      promotion: { previousProduction: null },
    });
    // Completed to every agent: the version becomes the fleet-wide target right after.
    await waitUntil(
      async () =>
        (await call<{ deployedVersion: number }>(cluster, 'GET', '/v1/models/digits')).body
          .deployedVersion === 2,
      10_000,
      'the fleet-wide target',
    );
    const entry = (await audit('version.stage')).at(-1)!;
    expect(entry).toMatchObject({ target: 'digits@2', details: { to: 'production', rollout: done.id } });
  });

  it('keeps one production version: promoting another archives the previous one in the same step', async () => {
    const promoted = await stage(3, { stage: 'production', rollout: { healthWindowSec: 0 } });
    expect(promoted.status).toBe(200);
    await rolloutDone(promoted.body.rollout!);
    expect((await version(2)).stage).toBe('archived');
    expect((await version(3)).stage).toBe('production');
    const production = (
      await call<{ versions: Version[] }>(cluster, 'GET', '/v1/models/digits/versions?stage=production')
    ).body.versions;
    expect(production.map((v) => v.version)).toEqual([3]);
    const entry = (await audit('version.stage')).at(-1)!;
    expect(entry).toMatchObject({
      target: 'digits@3',
      details: { from: 'none', to: 'production', archived: 2 },
    });
  });

  it('refuses bad and impossible moves with clear errors', async () => {
    expectError(
      await stage(3, { stage: 'production' }),
      409,
      'LOOM_ERR_CONFLICT',
      /already in stage production/,
    );
    expectError(await stage(3, { stage: 'prod' }), 400, 'LOOM_ERR_INVALID_ARGUMENT', /stage must be one of/);
    expectError(await stage(3, {}), 400, 'LOOM_ERR_INVALID_ARGUMENT', /stage/);
    expectError(await stage(3, { stage: 'staging', colour: 'red' }), 400, 'LOOM_ERR_INVALID_ARGUMENT');
    expectError(await stage(1, { stage: 'staging' }, viewer), 403, 'LOOM_ERR_FORBIDDEN');
    expectError(
      await call(cluster, 'POST', '/v1/models/digits/versions/1/stage', {
        token: null,
        body: { stage: 'staging' },
      }),
      401,
      'LOOM_ERR_UNAUTHORIZED',
    );
    expectError(await stage(42, { stage: 'staging' }), 404, 'LOOM_ERR_NOT_FOUND');
  });

  it('lets only an admin with a reason force a retired version back, and audits the override', async () => {
    expect((await stage(1, { stage: 'retired' })).status).toBe(200);
    expectError(await stage(1, { stage: 'staging' }), 409, 'LOOM_ERR_CONFLICT', /retired is final/);
    expectError(
      await stage(1, { stage: 'staging', force: true, reason: 'rollback test' }, operator),
      403,
      'LOOM_ERR_FORBIDDEN',
    );
    expectError(
      await stage(1, { stage: 'staging', force: true }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
      /reason/,
    );
    const forced = await stage(1, { stage: 'staging', force: true, reason: 'needed for a comparison' });
    expect(forced.status).toBe(200);
    expect(forced.body.stage).toBe('staging');
    const [entry] = await audit('version.stage.force');
    expect(entry).toMatchObject({
      target: 'digits@1',
      details: { from: 'retired', to: 'staging', reason: 'needed for a comparison', force: true },
    });
  });

  it('points aliases at one version each, resolvable wherever a version is read', async () => {
    const set = await call(cluster, 'PUT', '/v1/models/digits/aliases/champion', {
      token: operator,
      body: { version: 3 },
    });
    expect(set.status).toBe(200);
    expect(await version('champion')).toMatchObject({ version: 3, aliases: ['champion'] });
    expect(
      (await call(cluster, 'PUT', '/v1/models/digits/aliases/challenger', { body: { version: 2 } })).status,
    ).toBe(200);
    // Moving an alias is one change, and the audit says where it pointed before.
    expect(
      (await call(cluster, 'PUT', '/v1/models/digits/aliases/champion', { body: { version: 2 } })).status,
    ).toBe(200);
    expect((await version(2)).aliases.sort()).toEqual(['challenger', 'champion']);
    expect((await version(3)).aliases).toEqual([]);
    expect((await audit('alias.set')).at(-1)).toMatchObject({
      target: 'digits:champion',
      details: { version: 2, previous: 3 },
    });
    const aliases = (
      await call<{ aliases: { alias: string; version: number }[] }>(
        cluster,
        'GET',
        '/v1/models/digits/aliases',
        { token: viewer },
      )
    ).body.aliases;
    expect(aliases.map((a) => [a.alias, a.version])).toEqual([
      ['challenger', 2],
      ['champion', 2],
    ]);
    expect((await call(cluster, 'DELETE', '/v1/models/digits/aliases/challenger')).status).toBe(204);
    expectError(
      await call(cluster, 'GET', '/v1/models/digits/versions/challenger'),
      404,
      'LOOM_ERR_NOT_FOUND',
    );
    expectError(
      await call(cluster, 'DELETE', '/v1/models/digits/aliases/challenger'),
      404,
      'LOOM_ERR_NOT_FOUND',
    );
    expectError(
      await call(cluster, 'PUT', '/v1/models/digits/aliases/1st', { body: { version: 2 } }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
    );
    expectError(
      await call(cluster, 'PUT', '/v1/models/digits/aliases/next', { body: { version: 99 } }),
      404,
      'LOOM_ERR_NOT_FOUND',
    );
    expectError(
      await call(cluster, 'PUT', '/v1/models/digits/aliases/next', { body: { version: '2' } }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
    );
    expectError(
      await call(cluster, 'PUT', '/v1/models/digits/aliases/next', { token: viewer, body: { version: 2 } }),
      403,
      'LOOM_ERR_FORBIDDEN',
    );
    expectError(
      await call(cluster, 'DELETE', '/v1/models/digits/aliases/champion', { token: viewer }),
      403,
      'LOOM_ERR_FORBIDDEN',
    );
    expectError(await call(cluster, 'GET', '/v1/models/digits/versions/0'), 400, 'LOOM_ERR_INVALID_ARGUMENT');
  });

  describe('the validation gate', () => {
    let sites: RogueAgent[];
    /** Examples each site gets right, of 10, per version of model gated. */
    const right: Record<number, number> = { 2: 8, 3: 5, 4: 7 };

    const evaluate = async (v: number): Promise<void> => {
      const started = await call<{ id: string }>(
        cluster,
        'POST',
        `/v1/models/gated/versions/${v}/evaluations`,
        {
          body: { agents: sites.map((s) => s.agentId), minClients: 2, timeoutSec: 30 },
        },
      );
      expect(started.status).toBe(202);
      await waitUntil(
        async () =>
          (await call<{ state: string }>(cluster, 'GET', `/v1/models/gated/evaluations/${started.body.id}`))
            .body.state === 'completed',
        20_000,
        'the evaluation',
      );
    };
    const promote = (v: number, body: Record<string, unknown> = {}, token?: string) =>
      call<Version>(cluster, 'POST', `/v1/models/gated/versions/${v}/stage`, {
        body: { stage: 'production', ...body },
        ...(token ? { token } : {}),
      });

    const gatedVersion = async (v: number): Promise<Version> =>
      (await call<Version>(cluster, 'GET', `/v1/models/gated/versions/${v}`)).body;

    beforeAll(async () => {
      // Two sites of 100 examples (10 held out) whose reports per version are scripted.
      sites = [];
      for (const name of ['gate-site-1', 'gate-site-2']) {
        sites.push(
          await startRogueAgent(cluster, name, {
            declared: 100,
            answer: () => undefined,
            evaluation: (task) => tenExamples(right[task.model.version] ?? 0),
          }),
        );
      }
      expect(
        (await call(cluster, 'POST', '/v1/models', { body: { name: 'gated', architecture: ARCH } })).status,
      ).toBe(201);
      const { registry } = cluster.coordinator;
      const weights = await registry.getWeights('gated', 1);
      for (const parent of [1, 2, 3]) {
        await registry.addVersion({
          model: 'gated',
          parentVersion: parent,
          jobId: null,
          round: null,
          agents: [],
          exampleCounts: {},
          metrics: {},
          weights,
        });
      }
    });

    afterAll(async () => {
      await Promise.all(sites.map((s) => s.stop()));
    });

    it('takes a policy from operators only, checked field by field, and audits it', async () => {
      const path = '/v1/models/gated/policy';
      // Promotions of this model roll out to the real agent only, without a health window.
      const policy = {
        metric: 'accuracy',
        min: 0.6,
        maxRegression: 0.05,
        rollout: { target: { agents: [agent.status().agentId] }, healthWindowSec: 0 },
      };
      expectError(
        await call(cluster, 'PUT', path, { token: viewer, body: policy }),
        403,
        'LOOM_ERR_FORBIDDEN',
      );
      expectError(
        await call(cluster, 'PUT', path, { body: { metric: 'f1' } }),
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /metric/,
      );
      expectError(
        await call(cluster, 'PUT', path, { body: { metric: 'accuracy', max: 0.3 } }),
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /max is for loss/,
      );
      expectError(
        await call(cluster, 'PUT', path, { body: { metric: 'accuracy', min: 2 } }),
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
      );
      expectError(
        await call(cluster, 'PUT', path, { body: { ...policy, stageOnComplete: 'production' } }),
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /stageOnComplete/,
      );
      expectError(
        await call(cluster, 'PUT', path, { body: { ...policy, rollout: { waves: [50] } } }),
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /rollout\.waves must end at 100/,
      );
      expectError(
        await call(cluster, 'PUT', path, { body: { ...policy, rollout: { maxErrorRate: 2 } } }),
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
        /rollout\.maxErrorRate/,
      );
      expectError(
        await call(cluster, 'PUT', '/v1/models/nope/policy', { body: policy }),
        404,
        'LOOM_ERR_NOT_FOUND',
      );
      expect((await call(cluster, 'PUT', path, { token: operator, body: policy })).status).toBe(200);
      expect((await call<{ policy: unknown }>(cluster, 'GET', path, { token: viewer })).body.policy).toEqual(
        policy,
      );
      expect((await audit('model.policy')).at(-1)).toMatchObject({ target: 'gated', details: policy });
    });

    it('refuses production to a version without a completed evaluation', async () => {
      expectError(await promote(2), 409, 'LOOM_ERR_GATE', /no completed federated evaluation/);
      expect((await gatedVersion(2)).stage).toBe('none');
    });

    it('lets in a version whose evaluation meets the policy', async () => {
      await evaluate(2);
      const reply = await promote(2, {}, operator);
      expect(reply.status).toBe(200);
      expect(reply.body.stage).toBe('production');
      // The policy's plan: the named agent only.
      const done = await rolloutDone(reply.body.rollout!);
      expect(done.target).toEqual({ agents: [agent.status().agentId] });
    });

    it('refuses a worse version, naming the metric, the value and what it was compared with', async () => {
      await evaluate(3);
      const reply = await promote(3);
      expectError(reply, 409, 'LOOM_ERR_GATE');
      const message = (reply.body as unknown as ErrorReply).error.message;
      expect(message).toMatch(/accuracy 0\.5000? is below the policy's min 0\.6/);
      expect(message).toMatch(
        /against production version 2's 0\.8000? on the same 2 agents is a regression of 0\.3000?, more than the policy's maxRegression 0\.05/,
      );
      // Above the minimum, but still a regression beyond the bound.
      await evaluate(4);
      const second = await promote(4);
      expectError(second, 409, 'LOOM_ERR_GATE', /regression of 0\.1000?/);
      expect((second.body as unknown as ErrorReply).error.message).not.toMatch(/below the policy's min/);
      expect((await gatedVersion(2)).stage).toBe('production');
      expect((await gatedVersion(3)).stage).toBe('none');
    });

    it('lets an admin force it with a reason, and the audit log keeps the override and what the gate said', async () => {
      expectError(await promote(3, { force: true, reason: 'hotfix' }, operator), 403, 'LOOM_ERR_FORBIDDEN');
      expectError(await promote(3, { force: true }), 400, 'LOOM_ERR_INVALID_ARGUMENT', /reason/);
      const forced = await promote(3, { force: true, reason: 'known-bad site data; hotfix needed' });
      expect(forced.status).toBe(200);
      expect((await gatedVersion(3)).stage).toBe('production');
      expect((await gatedVersion(2)).stage).toBe('archived');
      const entry = (await audit('version.stage.force')).find((e) => e.target === 'gated@3')!;
      expect(entry.details).toMatchObject({
        from: 'none',
        to: 'production',
        archived: 2,
        force: true,
        reason: 'known-bad site data; hotfix needed',
      });
      expect(((entry.details ?? {}).gateOverridden as string[]).join(' ')).toMatch(
        /below the policy's min 0\.6/,
      );
    });
  });

  it('keeps stages, aliases, tags and descriptions across a restart, and the store check stays clean', async () => {
    await cluster.restartCoordinator();
    expect(cluster.coordinator.storeReport.ok).toBe(true);
    const list = (await call<{ versions: Version[] }>(cluster, 'GET', '/v1/models/digits/versions')).body
      .versions;
    expect(list.map((v) => [v.version, v.stage, v.aliases])).toEqual([
      [1, 'staging', []],
      [2, 'archived', ['champion']],
      [3, 'production', []],
    ]);
    expect(list[1]).toMatchObject({
      description: 'first federated model',
      tags: { dataset: 'mnist', lr: '0.1' },
    });
  });
});

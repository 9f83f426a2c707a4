// Rollouts against a real coordinator and real agents (TLS, LevelDB, loopback sockets): labels,
// role boundaries, waves gated by serving health that roll everything back on their own, agents
// that were away catching up, a coordinator restart in the middle, and retirement with its
// deprecation headers and the 410 after the sunset.
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutView } from '../../coordinator/rollouts/index.ts';
import { EdgeAgent } from '../../edge-agent/index.ts';
import { httpRequestRaw } from '../../shared/http/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import {
  CLOSE_CODES,
  chunkPayload,
  createMessage,
  encodeMessage,
  encodeTensorBytes,
  signDeployment,
} from '../../shared/protocol/index.ts';
import { sha256Hex, type WeightTensor } from '../../shared/tensors/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';

const FEATURES = 4;
const ARCH: ModelArchitecture = { kind: 'logistic', inputShape: [FEATURES], classes: 3 };
const HEALTH_INTERVAL_MS = 150;
/** Small chunks, so a model of a megabyte travels in a few dozen of them. */
const CHUNK_BYTES = 64 * 1024;
const silent = createLogger('silent');

let cluster: TestCluster;
const agents: EdgeAgent[] = [];
const dirs = new Map<EdgeAgent, string>();
let viewerToken: string;
let operatorToken: string;

function csv(): string {
  const rows = Array.from({ length: 12 }, (_, r) => [
    ...Array.from({ length: FEATURES }, (_, c) => Math.sin(r + c)),
    r % 3,
  ]);
  return `${[...Array.from({ length: FEATURES }, (_, c) => `x${c}`), 'label'].join(',')}\n${rows.map((r) => r.join(',')).join('\n')}\n`;
}

async function startAgent(name: string, labels: Record<string, string>): Promise<EdgeAgent> {
  let dir = '';
  const agent = await cluster.startAgentWith(
    name,
    async (dataDir) => {
      dir = dataDir;
      const path = join(dataDir, 'data.csv');
      await writeFile(path, csv());
      return path;
    },
    { labels },
  );
  dirs.set(agent, dir);
  agents.push(agent);
  return agent;
}

/** The same agent (data dir) started again, after `stop()`. */
async function restart(agent: EdgeAgent): Promise<EdgeAgent> {
  const dataDir = dirs.get(agent)!;
  const again = new EdgeAgent({
    dataDir,
    dataPath: join(dataDir, 'data.csv'),
    inferencePort: 0,
    healthIntervalMs: HEALTH_INTERVAL_MS,
    log: silent,
  });
  await again.start();
  dirs.set(again, dataDir);
  agents.push(again);
  return again;
}

/** A new version of `model` from `weights` of the same specs as version 1. */
async function addVersion(model: string, weights: (w: WeightTensor) => Float32Array): Promise<number> {
  const base = await cluster.coordinator.registry.getWeights(model, 1);
  const v = await cluster.coordinator.registry.addVersion({
    model,
    parentVersion: 1,
    jobId: null,
    round: null,
    agents: [],
    exampleCounts: {},
    metrics: {},
    weights: base.map((w) => ({ ...w, data: weights(w) })),
  });
  return v.version;
}

/** POSTs a prediction of one example whose features are all `value`; the status and version answered. */
async function infer(
  agent: EdgeAgent,
  model: string,
  value: number,
  version?: number,
): Promise<{ status: number; version?: string; headers: Headers; body: Record<string, unknown> }> {
  const path =
    version === undefined ? `/v2/models/${model}/infer` : `/v2/models/${model}/versions/${version}/infer`;
  const res = await fetch(`${agent.status().inferenceUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [
        { name: 'input', shape: [1, FEATURES], datatype: 'FP32', data: new Array(FEATURES).fill(value) },
      ],
    }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  return {
    status: res.status,
    headers: res.headers,
    body,
    ...(typeof body.model_version === 'string' ? { version: body.model_version } : {}),
  };
}

/** Calls the operator API with `token` (default admin; null: none); status and JSON body whatever the status. */
async function call(
  method: string,
  path: string,
  body?: unknown,
  token: string | null = cluster.adminToken,
  // biome-ignore lint/suspicious/noExplicitAny: test replies are read field by field
): Promise<{ status: number; body: any }> {
  const res = await httpRequestRaw(`${cluster.apiUrl}${path}`, {
    method,
    ca: cluster.caPem,
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, body: JSON.parse(res.body.toString('utf8')) };
}

async function waitForRollout(
  id: string,
  done: (r: RolloutView) => boolean,
  what: string,
  ms = 30_000,
): Promise<RolloutView> {
  let last: RolloutView | undefined;
  await waitUntil(
    async () => {
      last = await cluster.coordinator.rollouts.get(id);
      return done(last);
    },
    ms,
    what,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; rollout is ${JSON.stringify(last)}`);
  });
  return last!;
}

/** Waits until the agent answers unversioned predictions of `model` with `version`. */
async function waitServing(agent: EdgeAgent, model: string, version: number): Promise<void> {
  await waitUntil(
    async () => (await infer(agent, model, 0.5)).version === String(version),
    30_000,
    `${agent.status().name} to serve ${model}@${version}`,
  );
}

beforeAll(async () => {
  cluster = await startTestCluster({
    rolloutTickMs: 50,
    chunkBytes: CHUNK_BYTES,
    agentOptions: { healthIntervalMs: HEALTH_INTERVAL_MS },
  });
  viewerToken = (await cluster.api<{ token: string }>('/v1/tokens', { name: 'watcher', role: 'viewer' }))
    .token;
  operatorToken = (await cluster.api<{ token: string }>('/v1/tokens', { name: 'releaser', role: 'operator' }))
    .token;
  await startAgent('berlin-1', { site: 'berlin', tier: 'edge' });
  await startAgent('berlin-2', { site: 'berlin', tier: 'edge' });
  await startAgent('paris-1', { site: 'paris', tier: 'edge' });
  await startAgent('paris-2', { site: 'paris', tier: 'core' });
  await cluster.waitForAgents(4);
  await cluster.api('/v1/models', { name: 'gauge', architecture: ARCH });
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
  await cluster?.close();
});

describe('agent labels', () => {
  it('are given at enrollment, shown in the fleet view and filter it', async () => {
    const { body } = await call('GET', '/v1/agents?label=site=berlin');
    expect(body.agents.map((a: { name: string }) => a.name).sort()).toEqual(['berlin-1', 'berlin-2']);
    expect(body.agents[0].labels).toEqual({ site: 'berlin', tier: 'edge' });
    const none = await call('GET', '/v1/agents?label=site=rome');
    expect(none.body.agents).toEqual([]);
    const bad = await call('GET', '/v1/agents?label=site');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('LOOM_ERR_INVALID_ARGUMENT');
  });

  it('are replaced with PUT and merged with PATCH by an operator, audited, and refused when malformed', async () => {
    const id = agents[3].status().agentId;
    const put = await call(
      'PUT',
      `/v1/agents/${id}/labels`,
      { labels: { site: 'paris', tier: 'edge', rack: 'r7' } },
      operatorToken,
    );
    expect(put.status).toBe(200);
    expect(put.body.labels).toEqual({ site: 'paris', tier: 'edge', rack: 'r7' });
    const patch = await call(
      'PATCH',
      `/v1/agents/${id}/labels`,
      { labels: { rack: null, zone: 'eu-west' } },
      operatorToken,
    );
    expect(patch.body.labels).toEqual({ site: 'paris', tier: 'edge', zone: 'eu-west' });
    expect((await call('GET', `/v1/agents/${id}`)).body.labels).toEqual({
      site: 'paris',
      tier: 'edge',
      zone: 'eu-west',
    });
    const audit = await call('GET', '/v1/audit?action=agent.labels&limit=1000');
    expect(audit.body.entries.at(-1)).toMatchObject({ actor: 'releaser', target: id });
    for (const labels of [
      { 'bad key': 'x' },
      { site: 'a\u0007b' },
      { site: 'x'.repeat(64) },
      { site: 3 },
      ['site'],
    ]) {
      const reply = await call('PUT', `/v1/agents/${id}/labels`, { labels }, operatorToken);
      expect(reply.status, JSON.stringify(labels)).toBe(400);
      expect(reply.body.error.code).toBe('LOOM_ERR_INVALID_ARGUMENT');
    }
    const unknown = await call('PUT', '/v1/agents/agent-nobody/labels', { labels: {} }, operatorToken);
    expect(unknown.status).toBe(404);
  });
});

describe('rollout routes', () => {
  it('keep to their roles', async () => {
    const body = { model: 'gauge', version: 1, target: { all: true } };
    expect((await call('POST', '/v1/rollouts', body, null)).status).toBe(401);
    const refused = await call('POST', '/v1/rollouts', body, viewerToken);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('LOOM_ERR_FORBIDDEN');
    for (const action of ['pause', 'resume', 'rollback']) {
      expect((await call('POST', `/v1/rollouts/rollout-x/${action}`, undefined, viewerToken)).status).toBe(
        403,
      );
      expect((await call('POST', `/v1/rollouts/rollout-x/${action}`, undefined, null)).status).toBe(401);
    }
    expect(
      (await call('PUT', `/v1/agents/${agents[0].status().agentId}/labels`, { labels: {} }, viewerToken))
        .status,
    ).toBe(403);
    expect(
      (await call('POST', '/v1/models/gauge/versions/1/retire', { successor: 2 }, viewerToken)).status,
    ).toBe(403);
    expect((await call('GET', '/v1/rollouts', undefined, viewerToken)).status).toBe(200);
    expect((await call('GET', '/v1/rollouts', undefined, null)).status).toBe(401);
    expect((await call('GET', '/v1/rollouts/rollout-x', undefined, viewerToken)).status).toBe(404);
    expect((await call('GET', '/v1/models/gauge/retirements', undefined, viewerToken)).status).toBe(200);
  });

  it('refuse bad requests with a code naming the field', async () => {
    const cases: [unknown, number, string][] = [
      [{ model: 'gauge', version: 1 }, 400, 'LOOM_ERR_INVALID_ARGUMENT'],
      [
        { model: 'gauge', version: 1, target: { all: true, labels: { a: 'b' } } },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
      ],
      [
        { model: 'gauge', version: 1, target: { all: true }, waves: [50, 20, 100] },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
      ],
      [
        { model: 'gauge', version: 1, target: { all: true }, waves: [10, 50] },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
      ],
      [
        { model: 'gauge', version: 1, target: { all: true }, maxErrorRate: 2 },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
      ],
      [
        { model: 'gauge', version: 1, target: { all: true }, colour: 'red' },
        400,
        'LOOM_ERR_INVALID_ARGUMENT',
      ],
      [{ model: 'gauge', version: 99, target: { all: true } }, 404, 'LOOM_ERR_NOT_FOUND'],
      [{ model: 'nope', version: 1, target: { all: true } }, 404, 'LOOM_ERR_NOT_FOUND'],
      [{ model: 'gauge', version: 1, target: { agents: ['agent-nobody'] } }, 404, 'LOOM_ERR_NOT_FOUND'],
      [{ model: 'gauge', version: 1, target: { labels: { site: 'rome' } } }, 409, 'LOOM_ERR_NO_TARGETS'],
    ];
    for (const [body, status, code] of cases) {
      const reply = await call('POST', '/v1/rollouts', body, operatorToken);
      expect(reply.status, JSON.stringify(body)).toBe(status);
      expect(reply.body.error.code, JSON.stringify(body)).toBe(code);
    }
  });
});

describe('a rollout', () => {
  let good: number;
  let fragile: number;

  beforeAll(async () => {
    good = await addVersion('gauge', (w) => w.data.map((x) => x * 0.5));
    // Fine on the inputs of some sites, not of others: a kernel near the float32 limit overflows
    // to Infinity (and the softmax to NaN) once the inputs pass 1.
    fragile = await addVersion('gauge', (w) =>
      w.shape.length === 2 ? w.data.map(() => 3e38 / FEATURES) : w.data,
    );
  });

  it('reaches every agent in waves and leaves the fleet on the version', async () => {
    const created = await call(
      'POST',
      '/v1/rollouts',
      { model: 'gauge', version: good, target: { all: true }, waves: [50, 100], healthWindowSec: 0.3 },
      operatorToken,
    );
    expect(created.status).toBe(201);
    expect(created.body.waves.map((w: { agents: string[] }) => w.agents.length)).toEqual([2, 2]);
    const r = await waitForRollout(created.body.id, (r) => r.state !== 'running', 'the rollout to finish');
    expect(r.state).toBe('completed');
    expect(r.agents.every((a) => a.state === 'active' && a.previousVersion === null)).toBe(true);
    expect(r.waves.map((w) => w.state)).toEqual(['passed', 'passed']);
    for (const a of agents) await waitServing(a, 'gauge', good);
    // Completed to every agent: the version becomes the fleet-wide target right after.
    await waitUntil(
      async () => (await cluster.coordinator.deployments.get('gauge'))?.version === good,
      10_000,
      'the fleet-wide target',
    );
    const audit = await call('GET', '/v1/audit?limit=1000');
    const actions = audit.body.entries
      .filter((e: { target: string }) => e.target === r.id)
      .map((e: { action: string }) => e.action);
    expect(actions).toEqual(['rollout.create', 'rollout.wave', 'rollout.wave', 'rollout.complete']);
  });

  it('whose second wave is unhealthy rolls every agent back to the version it ran before, on its own', async () => {
    const sends: { version: number; activation: boolean }[] = [];
    const onSent = (p: { version: number; activation: boolean }): void => {
      sends.push(p);
    };
    cluster.coordinator.deployments.on('sent', onSent);
    const created = await call(
      'POST',
      '/v1/rollouts',
      {
        model: 'gauge',
        version: fragile,
        target: { all: true },
        waves: [50, 100],
        healthWindowSec: 0.5,
        maxErrorRate: 0.05,
        minRequests: 5,
      },
      operatorToken,
    );
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const again = await call(
      'POST',
      '/v1/rollouts',
      { model: 'gauge', version: good, target: { all: true } },
      operatorToken,
    );
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('LOOM_ERR_ROLLOUT_ACTIVE');
    const [first, second] = created.body.waves.map((w: { agents: string[] }) => w.agents);
    const byId = new Map(agents.slice(0, 4).map((a) => [a.status().agentId, a]));
    // Clients of the first wave's sites send small values, those of the second wave's large ones.
    let traffic = true;
    const failures: number[] = [];
    const load = (async () => {
      while (traffic) {
        await Promise.all([
          ...first.map((a: string) => infer(byId.get(a)!, 'gauge', 0.5)),
          ...second.map((a: string) =>
            infer(byId.get(a)!, 'gauge', 4).then((res) => res.status >= 500 && failures.push(res.status)),
          ),
        ]);
      }
    })();
    const r = await waitForRollout(id, (r) => r.state !== 'running', 'the rollout to end', 45_000);
    traffic = false;
    await load;
    expect(r.state).toBe('rolled-back');
    expect(r.waves[0].state).toBe('passed');
    expect(r.waves[0].health?.requests).toBeGreaterThanOrEqual(5);
    expect(r.waves[1].state).toBe('failed');
    expect(r.reason).toMatch(/wave 2 is unhealthy: error rate .* above maxErrorRate 0.05/);
    expect(r.waves[1].health?.errors).toBeGreaterThan(0);
    expect(failures.length).toBeGreaterThan(0);
    // Every agent goes back to the good version, the healthy first wave too.
    const done = await waitForRollout(
      id,
      (r) => r.agents.every((a) => a.state === 'rolled-back'),
      'every agent back',
    );
    expect(done.agents.every((a) => a.previousVersion === good)).toBe(true);
    for (const a of byId.values()) await waitServing(a, 'gauge', good);
    expect((await infer(byId.get(second[0])!, 'gauge', 4)).status).toBe(200);
    // The way back needed no download: each agent's store still held the good version.
    cluster.coordinator.deployments.off('sent', onSent);
    const back = sends.filter((p) => p.version === good);
    expect(back).toHaveLength(4);
    expect(back.every((p) => p.activation)).toBe(true);
    expect(sends.filter((p) => p.version === fragile).every((p) => !p.activation)).toBe(true);
    const audit = await call('GET', '/v1/audit?action=rollout.rollback&limit=1000');
    expect(audit.body.entries.at(-1)).toMatchObject({ actor: 'coordinator', target: id });
    const again2 = await call('POST', `/v1/rollouts/${id}/rollback`, undefined, operatorToken);
    expect(again2.status).toBe(409);
    expect(again2.body.error.code).toBe('LOOM_ERR_ROLLOUT_STATE');
  }, 60_000);

  it('reaches an agent that was away when it returns, including a rollback it missed', async () => {
    const [away, ...others] = agents.slice(0, 4);
    const next = await addVersion('gauge', (w) => w.data.map((x) => x * 0.25));
    // The agent gets the version, goes away, and the rollout is rolled back meanwhile.
    const created = await call(
      'POST',
      '/v1/rollouts',
      { model: 'gauge', version: next, target: { labels: { tier: 'edge' } }, healthWindowSec: 600 },
      operatorToken,
    );
    const id = created.body.id as string;
    expect(created.body.agents.map((a: { id: string }) => a.id)).toContain(away.status().agentId);
    await waitForRollout(id, (r) => r.waves[0].observingSince !== undefined, 'the wave to be watched');
    await waitServing(away, 'gauge', next);
    await away.stop();
    await waitUntil(
      () => !cluster.coordinator.gateway.session(away.status().agentId),
      10_000,
      'the agent to leave',
    );
    const paused = await call('POST', `/v1/rollouts/${id}/pause`, undefined, operatorToken);
    expect(paused.body.state).toBe('paused');
    expect((await call('POST', `/v1/rollouts/${id}/pause`, undefined, operatorToken)).body.error.code).toBe(
      'LOOM_ERR_ROLLOUT_STATE',
    );
    const rolled = await call('POST', `/v1/rollouts/${id}/rollback`, undefined, operatorToken);
    expect(rolled.body.state).toBe('rolled-back');
    expect(rolled.body.reason).toBe('rolled back by releaser');
    for (const a of others.filter((o) =>
      created.body.agents.some((x: { id: string }) => x.id === o.status().agentId),
    )) {
      await waitServing(a, 'gauge', good);
    }
    const stillAway = (await cluster.coordinator.rollouts.get(id)).agents.find(
      (a) => a.id === away.status().agentId,
    );
    expect(stillAway?.state).toBe('rolling-back');
    // Back again: it is told to return to the version it ran before.
    const back = await restart(away);
    await waitServing(back, 'gauge', good);
    await waitForRollout(
      id,
      (r) => r.agents.every((a) => a.state === 'rolled-back'),
      'the returned agent to roll back',
    );

    // Away while a rollout to every agent runs: the rollout does not wait for it, and it gets
    // the version when it returns.
    await back.stop();
    await waitUntil(
      () => !cluster.coordinator.gateway.session(back.status().agentId),
      10_000,
      'the agent to leave',
    );
    const all = await call(
      'POST',
      '/v1/rollouts',
      { model: 'gauge', version: next, target: { all: true }, healthWindowSec: 0 },
      operatorToken,
    );
    const r = await waitForRollout(
      all.body.id,
      (r) => r.state === 'completed',
      'the rollout to complete without it',
    );
    expect(r.agents.find((a) => a.id === back.status().agentId)?.state).toBe('pending');
    const returned = await restart(back);
    await waitServing(returned, 'gauge', next);
    await waitForRollout(
      all.body.id,
      (r) => r.agents.every((a) => a.state === 'active'),
      'the returned agent to be active',
    );
  }, 60_000);

  it('carries on after a coordinator restart', async () => {
    const live = agents.filter((a) => a.status().connected);
    const later = await addVersion('gauge', (w) => w.data.map((x) => x * 0.125));
    const created = await call(
      'POST',
      '/v1/rollouts',
      { model: 'gauge', version: later, target: { all: true }, waves: [25, 100], healthWindowSec: 1 },
      operatorToken,
    );
    const id = created.body.id as string;
    await waitForRollout(id, (r) => r.waves[0].state === 'running', 'the first wave to start');
    await cluster.restartCoordinator();
    const r = await waitForRollout(
      id,
      (r) => r.state !== 'running',
      'the rollout to finish after the restart',
      45_000,
    );
    expect(r.state).toBe('completed');
    for (const a of live) await waitServing(a, 'gauge', later);
  }, 60_000);
});

describe('retirement', () => {
  it('moves the agents to the successor and marks the retired version, then answers 410 after the sunset', async () => {
    await cluster.api('/v1/models', { name: 'dial', architecture: ARCH });
    const successor = await addVersion('dial', (w) => w.data.map((x) => x * 0.5));
    await cluster.coordinator.deployments.deploy('dial', 1);
    const live = agents.filter((a) => a.status().connected);
    for (const a of live) await waitServing(a, 'dial', 1);
    for (const [body, status, code] of [
      [{ successor: 1 }, 400, 'LOOM_ERR_INVALID_ARGUMENT'],
      [{ successor: 77 }, 404, 'LOOM_ERR_NOT_FOUND'],
      [{}, 400, 'LOOM_ERR_INVALID_ARGUMENT'],
      [{ successor: 2, graceSec: -1 }, 400, 'LOOM_ERR_INVALID_ARGUMENT'],
    ] as const) {
      const reply = await call('POST', '/v1/models/dial/versions/1/retire', body, operatorToken);
      expect(reply.status, JSON.stringify(body)).toBe(status);
      expect(reply.body.error.code).toBe(code);
    }
    const retired = await call(
      'POST',
      '/v1/models/dial/versions/1/retire',
      { successor, graceSec: 3 },
      operatorToken,
    );
    expect(retired.status).toBe(201);
    expect(retired.body).toMatchObject({ model: 'dial', version: 1, successor, graceSec: 3 });
    expect(retired.body.rollout).toMatch(/^rollout-/);
    expect(
      (await call('POST', '/v1/models/dial/versions/1/retire', { successor }, operatorToken)).status,
    ).toBe(409);
    for (const a of live) await waitServing(a, 'dial', successor);

    // During the grace period a call naming the retired version works, with the headers.
    const agent = live[0];
    let during = await infer(agent, 'dial', 0.5, 1);
    await waitUntil(
      async () => {
        during = await infer(agent, 'dial', 0.5, 1);
        return during.headers.has('deprecation');
      },
      10_000,
      'the agent to learn of the retirement',
    );
    expect(during.status).toBe(200);
    expect(during.version).toBe('1');
    expect(during.headers.get('deprecation')).toMatch(/^@\d+$/);
    expect(new Date(during.headers.get('sunset')!).toISOString()).toBe(
      new Date(Math.floor(Date.parse(retired.body.sunsetAt) / 1000) * 1000).toISOString(),
    );
    expect(during.headers.get('link')).toBe(
      `</v2/models/dial/versions/${successor}>; rel="successor-version"`,
    );
    const current = await infer(agent, 'dial', 0.5);
    expect(current.headers.has('deprecation')).toBe(false);

    // After it, 410 naming the successor.
    let after = during;
    await waitUntil(
      async () => {
        after = await infer(agent, 'dial', 0.5, 1);
        return after.status !== 200;
      },
      10_000,
      'the sunset',
    );
    expect(after.status).toBe(410);
    expect(after.body).toMatchObject({ code: 'LOOM_ERR_VERSION_RETIRED', successor });
    expect(after.headers.get('link')).toBe(
      `</v2/models/dial/versions/${successor}>; rel="successor-version"`,
    );
    const listed = await call('GET', '/v1/models/dial/retirements', undefined, viewerToken);
    expect(listed.body.retirements).toHaveLength(1);
  }, 60_000);
});

describe('an agent', () => {
  /** The coordinator's server certificate, as its API presents it. */
  async function serverCertificate(): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect(
        { host: '127.0.0.1', port: cluster.coordinator.apiPort, ca: cluster.caPem, servername: 'localhost' },
        () => {
          const raw = socket.getPeerCertificate().raw;
          socket.end();
          resolve(new X509Certificate(raw).toString());
        },
      );
      socket.on('error', reject);
    });
  }

  function nextAck(agentId: string, version: number): Promise<{ ok: boolean; error?: string }> {
    return new Promise((resolve) => {
      const listener = (a: { agentId: string; version: number; ok: boolean; error?: string }): void => {
        if (a.agentId !== agentId || a.version !== version) return;
        cluster.coordinator.deployments.off('ack', listener);
        resolve(a);
      };
      cluster.coordinator.deployments.on('ack', listener);
    });
  }

  it('refuses a deployment whose signature, weights hash or chunk is wrong, and activates none of them', async () => {
    const agent = agents.find((a) => a.status().connected)!;
    const agentId = agent.status().agentId;
    const before = (await infer(agent, 'gauge', 0.5)).version;
    const bogus = await addVersion('gauge', (w) => w.data.map((x) => x + 1));
    const { architecture } = await cluster.coordinator.registry.getModel('gauge');
    const bytes = encodeTensorBytes(await cluster.coordinator.registry.getWeights('gauge', bogus));
    const sha256 = sha256Hex(bytes);
    const model = { name: 'gauge', version: bogus, architecture };
    const signerCertificate = await serverCertificate();
    const session = cluster.coordinator.gateway.session(agentId)!;

    // Signed by a key that is not the coordinator's, under the coordinator's certificate.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = signDeployment(
      model,
      sha256,
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    );
    let ack = nextAck(agentId, bogus);
    session.sendDeploy({ model, weights: bytes, sha256, signature: forged, signerCertificate });
    expect(await ack).toMatchObject({ ok: false, error: expect.stringMatching(/does not verify/) });

    // Weights changed after they were hashed and signed.
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 1] ^= 0xff;
    ack = nextAck(agentId, bogus);
    session.sendDeploy({ model, weights: tampered, sha256, signature: forged, signerCertificate });
    expect(await ack).toMatchObject({ ok: false, error: expect.stringMatching(/SHA-256/) });

    // A chunk whose bytes do not match its hash: refused as it arrives, and said back.
    const refusal = new Promise<{ code: string; message: string }>((resolve) =>
      cluster.coordinator.gateway.once('agent-error', resolve),
    );
    const { chunks } = chunkPayload(bytes, 16);
    chunks[1] = { ...chunks[1], bytes: Buffer.from(chunks[1].bytes).fill(7) };
    for (const c of chunks) session.ws.send(encodeMessage(createMessage('chunk', c)));
    expect(await refusal).toMatchObject({
      code: 'LOOM_ERR_PROTOCOL',
      message: expect.stringMatching(/SHA-256/),
    });

    expect((await infer(agent, 'gauge', 0.5)).version).toBe(before);
    expect((await infer(agent, 'gauge', 0.5, bogus)).status).toBe(404);
    expect(session.isClosed).toBe(false);
  });
});

describe('a transfer cut in the middle', () => {
  it('resumes where it stopped: the agent keeps the chunks it has, the coordinator sends the rest', async () => {
    // 4 → 512 → 512 → 3: 266,755 parameters, about 1 MB, 17 chunks of 64 KiB.
    await cluster.api('/v1/models', {
      name: 'bulk',
      architecture: { kind: 'mlp', inputShape: [FEATURES], layers: [512, 512, 3] },
    });
    const agent = agents.find((a) => a.status().connected)!;
    const agentId = agent.status().agentId;
    const bytes = encodeTensorBytes(await cluster.coordinator.registry.getWeights('bulk', 1));
    const { chunks } = chunkPayload(bytes, CHUNK_BYTES);
    expect(chunks.length).toBeGreaterThan(10);
    const half = Math.floor(chunks.length / 2);
    // The first half reaches the agent, then the connection drops.
    const first = cluster.coordinator.gateway.session(agentId)!;
    for (const c of chunks.slice(0, half)) first.ws.send(encodeMessage(createMessage('chunk', c)));
    cluster.coordinator.gateway.disconnect(agentId, CLOSE_CODES.HEARTBEAT_TIMEOUT, 'connection cut');
    await waitUntil(
      () => {
        const s = cluster.coordinator.gateway.session(agentId);
        return s !== undefined && s !== first;
      },
      20_000,
      'the agent to reconnect',
    );
    // Its hello says what it holds.
    const held = cluster.coordinator.gateway.session(agentId)!.info.partial.get(sha256Hex(bytes));
    expect(held?.count).toBe(chunks.length);
    const sent = new Promise<number>((resolve) =>
      cluster.coordinator.deployments.on(
        'sent',
        (p) => p.agentId === agentId && p.model === 'bulk' && resolve(p.resumedChunks),
      ),
    );
    const ack = new Promise<boolean>((resolve) =>
      cluster.coordinator.deployments.on(
        'ack',
        (a) => a.agentId === agentId && a.model === 'bulk' && resolve(a.ok),
      ),
    );
    await cluster.coordinator.deployments.deployTo('bulk', 1, [agentId]);
    expect(await sent).toBe(half);
    expect(await ack).toBe(true);
    const res = await fetch(`${agent.status().inferenceUrl}/v2/models/bulk/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'input', shape: [1, FEATURES], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4] }],
      }),
    });
    expect(res.status).toBe(200);
  }, 60_000);
});

// Promotion to production starts a staged rollout, against a real coordinator and real agents
// (TLS, LevelDB, loopback sockets): the plan comes from the request, then the model's policy, then
// the defaults; a promotion while a rollout of the model runs is refused before the stage changes;
// a promotion whose rollout is rolled back puts the previous production version back; a job with
// `promote: "if-better"` names the rollout it started.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROMOTION_ROLLOUT_DEFAULTS, type RolloutView } from '../../coordinator/rollouts/index.ts';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import { httpRequestRaw } from '../../shared/http/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';

const FEATURES = 4;
const ARCH: ModelArchitecture = { kind: 'logistic', inputShape: [FEATURES], classes: 3 };

let cluster: TestCluster;
const agents: EdgeAgent[] = [];

function csv(): string {
  const rows = Array.from({ length: 40 }, (_, r) => [
    ...Array.from({ length: FEATURES }, (_, c) => Math.sin(r + c)),
    r % 3,
  ]);
  return `${[...Array.from({ length: FEATURES }, (_, c) => `x${c}`), 'label'].join(',')}\n${rows.map((r) => r.join(',')).join('\n')}\n`;
}

/** Calls the operator API as admin; status and JSON body whatever the status. */
// biome-ignore lint/suspicious/noExplicitAny: test replies are read field by field
async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await httpRequestRaw(`${cluster.apiUrl}${path}`, {
    method,
    ca: cluster.caPem,
    headers: { authorization: `Bearer ${cluster.adminToken}` },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, body: JSON.parse(res.body.toString('utf8')) };
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

async function infer(agent: EdgeAgent, model: string, value: number): Promise<number> {
  const res = await fetch(`${agent.status().inferenceUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [
        { name: 'input', shape: [1, FEATURES], datatype: 'FP32', data: new Array(FEATURES).fill(value) },
      ],
    }),
  });
  await res.arrayBuffer();
  return res.status;
}

async function waitForRollout(
  id: string,
  done: (r: RolloutView) => boolean,
  what: string,
): Promise<RolloutView> {
  let last: RolloutView | undefined;
  await waitUntil(
    async () => {
      last = await cluster.coordinator.rollouts.get(id);
      return done(last);
    },
    45_000,
    what,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; rollout is ${JSON.stringify(last)}`);
  });
  return last!;
}

const stageOf = async (model: string, version: number): Promise<string> =>
  (await call('GET', `/v1/models/${model}/versions/${version}`)).body.stage;

const promote = (model: string, version: number, body: Record<string, unknown> = {}) =>
  call('POST', `/v1/models/${model}/versions/${version}/stage`, { stage: 'production', ...body });

beforeAll(async () => {
  cluster = await startTestCluster({
    rolloutTickMs: 50,
    agentOptions: { healthIntervalMs: 150 },
  });
  for (const [name, site] of [
    ['north-1', 'north'],
    ['north-2', 'north'],
    ['south-1', 'south'],
  ]) {
    agents.push(
      await cluster.startAgentWith(
        name,
        async (dataDir) => {
          const path = join(dataDir, 'data.csv');
          await writeFile(path, csv());
          return path;
        },
        { labels: { site } },
      ),
    );
  }
  await cluster.waitForAgents(3);
  await cluster.api('/v1/models', { name: 'meter', architecture: ARCH });
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
  await cluster?.close();
});

describe('a promotion to production', () => {
  let good: number;
  let fragile: number;
  let spare: number;

  beforeAll(async () => {
    good = await addVersion('meter', (w) => w.data.map((x) => x * 0.5));
    // A kernel near the float32 limit overflows (a 500 from the model) once inputs pass 1.
    fragile = await addVersion('meter', (w) =>
      w.shape.length === 2 ? w.data.map(() => 3e38 / FEATURES) : w.data,
    );
    spare = await addVersion('meter', (w) => w.data.map((x) => x * 0.25));
  });

  it('starts a rollout with the request plan, the policy plan for what it leaves out, then the defaults', async () => {
    // A policy whose plan rolls out in two waves; the gate it brings is forced past by an admin.
    const policy = await call('PUT', '/v1/models/meter/policy', {
      metric: 'accuracy',
      rollout: { waves: [50, 100], maxP99Ms: 500 },
    });
    expect(policy.status).toBe(200);
    expect(policy.body.policy.rollout).toEqual({ waves: [50, 100], maxP99Ms: 500 });
    const reply = await promote('meter', good, {
      force: true,
      reason: 'first production version',
      rollout: { healthWindowSec: 0.2, target: { all: true } },
    });
    expect(reply.status).toBe(200);
    expect(reply.body.stage).toBe('production');
    const id = reply.body.rollout as string;
    expect(id).toMatch(/^rollout-/);
    const r = await waitForRollout(id, (r) => r.state !== 'running', 'the promotion rollout to finish');
    expect(r.state).toBe('completed');
    expect(r.waves.map((w) => w.percent)).toEqual([50, 100]);
    expect(r.policy).toEqual({
      healthWindowSec: 0.2,
      maxP99Ms: 500,
      maxErrorRate: PROMOTION_ROLLOUT_DEFAULTS.maxErrorRate,
      minRequests: PROMOTION_ROLLOUT_DEFAULTS.minRequests,
      failQuorum: PROMOTION_ROLLOUT_DEFAULTS.failQuorum,
    });
    expect(r.promotion).toMatchObject({ previousProduction: null, previousStage: 'none' });
    expect(r.agents.map((a) => a.state)).toEqual(['active', 'active', 'active']);
    // The stage change and the rollout are one audited write.
    const audit = await call('GET', '/v1/audit?action=version.stage.force&limit=1000');
    expect(audit.body.entries.at(-1)).toMatchObject({ target: `meter@${good}`, details: { rollout: id } });
    expect((await call('PUT', '/v1/models/meter/policy', { metric: 'accuracy' })).status).toBe(200);
  });

  it('checks its rollout plan field by field, and changes no stage on a bad one', async () => {
    const force = { force: true, reason: 'plan checks' };
    const bad = await promote('meter', spare, { ...force, rollout: { waves: [10, 20] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'LOOM_ERR_INVALID_ARGUMENT' });
    expect(bad.body.error.message).toMatch(/rollout\.waves must end at 100/);
    const unknown = await promote('meter', spare, { ...force, rollout: { speed: 'fast' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/rollout\.speed is not a known field/);
    const notProduction = await call('POST', `/v1/models/meter/versions/${spare}/stage`, {
      stage: 'staging',
      rollout: { waves: [100] },
    });
    expect(notProduction.status).toBe(400);
    expect(notProduction.body.error.message).toMatch(/rollout is for a promotion to production/);
    // A target that matches no agent refuses the promotion whole.
    const nobody = await promote('meter', spare, {
      ...force,
      rollout: { target: { labels: { site: 'moon' } } },
    });
    expect(nobody.status).toBe(409);
    expect(nobody.body.error.code).toBe('LOOM_ERR_NO_TARGETS');
    expect(await stageOf('meter', spare)).toBe('none');
    expect(await stageOf('meter', good)).toBe('production');
  });

  it('is refused with LOOM_ERR_ROLLOUT_ACTIVE while a rollout of the model runs, before the stage changes', async () => {
    const running = await call('POST', '/v1/rollouts', {
      model: 'meter',
      version: spare,
      target: { labels: { site: 'south' } },
      healthWindowSec: 600,
    });
    expect(running.status).toBe(201);
    const refused = await promote('meter', spare, { force: true, reason: 'hotfix' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('LOOM_ERR_ROLLOUT_ACTIVE');
    expect(refused.body.error.message).toContain(running.body.id);
    expect(await stageOf('meter', spare)).toBe('none');
    expect(await stageOf('meter', good)).toBe('production');
    const rollouts = (await call('GET', '/v1/rollouts?model=meter')).body.rollouts as RolloutView[];
    expect(rollouts.filter((r) => r.state === 'running').map((r) => r.id)).toEqual([running.body.id]);
    const back = await call('POST', `/v1/rollouts/${running.body.id}/rollback`);
    expect(back.status).toBe(200);
    // A rollout an operator started is no promotion: its rollback leaves the stages alone.
    await waitForRollout(
      running.body.id,
      (r) => r.agents.every((a) => a.state === 'rolled-back'),
      'south back',
    );
    expect(await stageOf('meter', good)).toBe('production');
  });

  it('whose rollout turns unhealthy rolls back on its own and makes the previous version production again', async () => {
    const reply = await promote('meter', fragile, {
      force: true,
      reason: 'try the new kernel',
      rollout: { waves: [34, 100], healthWindowSec: 0.5, maxErrorRate: 0.05, minRequests: 5 },
    });
    expect(reply.status).toBe(200);
    const id = reply.body.rollout as string;
    expect(await stageOf('meter', good)).toBe('archived');
    // Callers of every site send inputs the fragile version overflows on.
    let traffic = true;
    const load = (async () => {
      while (traffic) await Promise.all(agents.map((a) => infer(a, 'meter', 4)));
    })();
    const r = await waitForRollout(id, (r) => r.state !== 'running', 'the rollout to end');
    traffic = false;
    await load;
    expect(r.state).toBe('rolled-back');
    expect(r.reason).toMatch(/unhealthy/);
    await waitUntil(
      async () => (await stageOf('meter', good)) === 'production',
      10_000,
      'the previous version to be production again',
    );
    expect(await stageOf('meter', fragile)).toBe('none');
    const restored = await waitForRollout(
      id,
      (r) => r.promotion?.restoredAt !== undefined,
      'the restore recorded',
    );
    expect(restored.promotion).toMatchObject({ previousProduction: good, previousStage: 'none' });
    const audit = await call('GET', '/v1/audit?action=version.stage.restore&limit=1000');
    expect(audit.body.entries.at(-1)).toMatchObject({
      actor: 'coordinator',
      target: `meter@${fragile}`,
      details: { from: 'production', to: 'none', production: good, rollout: id },
    });
    const production = (await call('GET', '/v1/models/meter/versions?stage=production')).body.versions;
    expect(production.map((v: { version: number }) => v.version)).toEqual([good]);
    // The canary wave goes back; the wave that never started was never sent the version.
    const back = await waitForRollout(
      id,
      (r) => r.agents.filter((a) => a.wave === 0).every((a) => a.state === 'rolled-back'),
      'the canary wave back',
    );
    expect(back.agents.filter((a) => a.wave === 1).map((a) => a.state)).toEqual(['pending']);
  }, 60_000);
});

describe('a promotion in a deployment without agents', () => {
  it('changes the stage, starts no rollout and sets the fleet target for agents that enroll later', async () => {
    const empty = await startTestCluster();
    try {
      await empty.api('/v1/models', { name: 'lonely', architecture: ARCH });
      const res = await httpRequestRaw(`${empty.apiUrl}/v1/models/lonely/versions/1/stage`, {
        method: 'POST',
        ca: empty.caPem,
        headers: { authorization: `Bearer ${empty.adminToken}` },
        body: { stage: 'production' },
      });
      expect(res.status).toBe(200);
      const body = JSON.parse(res.body.toString('utf8'));
      expect(body).toMatchObject({ stage: 'production', rollout: null });
      expect((await empty.coordinator.deployments.get('lonely'))?.version).toBe(1);
    } finally {
      await empty.close();
    }
  });
});

describe('a job with promote: "if-better"', () => {
  it('starts a rollout with the plan of its config and names it in the job record', async () => {
    await cluster.api('/v1/models', { name: 'dial', architecture: ARCH });
    const bad = await call('POST', '/v1/jobs', { model: 'dial', rollout: { waves: [100] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/rollout is for promote: "if-better"/);
    const { id } = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'dial',
      rounds: 1,
      minClients: 3,
      roundTimeoutSec: 60,
      batchSize: 8,
      promote: 'if-better',
      rollout: { target: { labels: { site: 'north' } }, healthWindowSec: 0 },
    });
    const job = await cluster.waitForJob(id);
    expect(job.state).toBe('completed');
    expect(job.promotion).toMatchObject({ stage: 'production', promoted: true });
    const rolloutId = job.promotion?.rollout as string;
    expect(rolloutId).toMatch(/^rollout-/);
    const r = await waitForRollout(rolloutId, (r) => r.state !== 'running', 'the job rollout to finish');
    expect(r).toMatchObject({
      state: 'completed',
      version: job.latestVersion,
      target: { labels: { site: 'north' } },
    });
    expect(r.agents).toHaveLength(2);
  }, 90_000);
});

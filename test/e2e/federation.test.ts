// A whole federation: a real coordinator and three real edge agents on small MNIST subsets, over
// mutual TLS on loopback, training a model that must beat its initial accuracy, then serving it.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../coordinator/jobs/index.ts';
import type { VersionRecord } from '../../coordinator/registry/index.ts';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import { loadIdentity, readMnist } from '../../edge-agent/index.ts';
import { httpRequestRaw, requestJson } from '../../shared/http/index.ts';
import {
  buildModel,
  evaluateClassifier,
  type ModelArchitecture,
  modelWeightSpecs,
  writeWeights,
} from '../../shared/models/index.ts';
import { splitWeightData } from '../../shared/tensors/index.ts';
import { startTestCluster, type TestCluster, tryConnect, waitUntil } from '../helpers/cluster.ts';

const ARCH: ModelArchitecture = { kind: 'mlp', inputShape: [784], layers: [64, 10], activation: 'relu' };

describe('federated training end to end', () => {
  let cluster: TestCluster;
  let agents: EdgeAgent[];
  let test: { x: Float32Array; labels: Uint8Array };

  async function accuracyOf(version: number): Promise<number> {
    const res = await httpRequestRaw(
      `${cluster.apiUrl}/v1/models/digits/versions/${version}/artifact/weights.bin`,
      {
        ca: cluster.caPem,
        headers: { authorization: `Bearer ${cluster.adminToken}` },
      },
    );
    expect(res.status).toBe(200);
    const model = await buildModel(ARCH);
    writeWeights(model, splitWeightData(modelWeightSpecs(model), res.body));
    const acc = evaluateClassifier(model, test.x, test.labels, [784]).accuracy;
    model.dispose();
    return acc;
  }

  beforeAll(async () => {
    cluster = await startTestCluster();
    const mnist = await readMnist('test', { limit: 1000 });
    test = { x: Float32Array.from(mnist.images, (v) => v / 255), labels: mnist.labels };
    agents = [];
    for (let i = 0; i < 3; i++)
      agents.push(await cluster.startAgent(`site-${i + 1}`, { offset: i * 800, count: 800 }));
    await cluster.waitForAgents(3);
    await cluster.api('/v1/models', { name: 'digits', architecture: ARCH });
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('trains across three agents and beats the initial model', async () => {
    const created = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 3,
      clientsPerRound: 3,
      minClients: 3,
      roundTimeoutSec: 60,
      epochs: 1,
      batchSize: 16,
      learningRate: 0.1,
      promote: 'if-better',
      // The promotion's rollout: one wave, passed as soon as every agent runs the version.
      rollout: { healthWindowSec: 0 },
    });
    const job = await cluster.waitForJob(created.id);
    expect(job.state).toBe('completed');
    expect(job.rounds).toHaveLength(3);
    for (const r of job.rounds) {
      expect(r.participants).toHaveLength(3);
      expect(r.failures).toEqual([]);
      expect(r.trainMetrics.loss).toBeGreaterThan(0);
    }
    expect(job.latestVersion).toBe(4);

    const initial = await accuracyOf(1);
    const final = await accuracyOf(4);
    expect(final).toBeGreaterThan(initial + 0.3);
    expect(final).toBeGreaterThan(0.75);

    // Each site trains on its 800 examples less the hold-out share (10%) kept for evaluation.
    const v4 = await cluster.api<VersionRecord>('/v1/models/digits/versions/4');
    expect(v4).toMatchObject({ parentVersion: 3, jobId: created.id, round: 3, numExamples: 2160 });
    expect(v4.agents.sort()).toEqual(agents.map((a) => a.status().agentId).sort());
    expect(Object.values(v4.exampleCounts)).toEqual([720, 720, 720]);
    // The final version was evaluated on the three sites' hold-out data before the job ended.
    expect(job.evaluations).toEqual([
      expect.objectContaining({ round: 3, version: 4, state: 'completed', sites: 3, numExamples: 240 }),
    ]);
    expect(job.evaluations![0].accuracy).toBeGreaterThan(0.75);
    // Evaluated, through the gate (nothing in production yet), into production: deployed.
    expect(job.promotion).toEqual({
      version: 4,
      stage: 'production',
      promoted: true,
      rollout: expect.stringMatching(/^rollout-/),
    });
  });

  it('deploys the promoted version to every agent, which serve it over the inference protocol', async () => {
    await waitUntil(
      () => agents.every((a) => a.status().models.some((m) => m.name === 'digits' && m.version === 4)),
      20_000,
      'deployment to all agents',
    );
    const image = Array.from(test.x.subarray(0, 784));
    for (const agent of agents) {
      const res = await requestJson<{
        model_name: string;
        model_version: string;
        outputs: { name: string; data: number[] }[];
      }>(`${agent.status().inferenceUrl}/v2/models/digits/infer`, {
        body: { inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: image }] },
      });
      expect(res.model_name).toBe('digits');
      expect(res.model_version).toBe('4');
      const probs = res.outputs.find((o) => o.name === 'probabilities')!.data;
      expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
    }
  });

  it('finishes a round without an agent that drops mid-round, recording why it failed', async () => {
    const created = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 1,
      clientsPerRound: 3,
      minClients: 2,
      roundTimeoutSec: 60,
      // Long enough local training that the agent is surely mid-task when it drops.
      epochs: 15,
      batchSize: 16,
      learningRate: 0.05,
    });
    const victim = agents[2];
    const victimId = victim.status().agentId;
    await waitUntil(
      () => (cluster.coordinator.gateway.session(victimId)?.inFlight ?? 0) > 0,
      20_000,
      'task sent',
    );
    await victim.stop();
    const job = await cluster.waitForJob(created.id);
    expect(job.state).toBe('completed');
    expect(job.rounds[0].participants.map((p) => p.agentId)).not.toContain(victimId);
    expect(job.rounds[0].participants).toHaveLength(2);
    expect(job.rounds[0].failures).toEqual([
      expect.objectContaining({ agentId: victimId, code: 'LOOM_ERR_AGENT_DISCONNECTED' }),
    ]);
  });

  it('sends the deployed version to an agent that connects later', async () => {
    // The job before this one left its version a candidate: version 4 is still what is deployed
    // (the fleet-wide target once the promotion's rollout completed).
    let model = { deployedVersion: 0, latestVersion: 0 };
    await waitUntil(
      async () => {
        model = await cluster.api<{ deployedVersion: number; latestVersion: number }>('/v1/models/digits');
        return model.deployedVersion === 4;
      },
      20_000,
      'the fleet-wide target',
    );
    const { deployedVersion, latestVersion } = model;
    expect(deployedVersion).toBe(4);
    expect(latestVersion).toBe(5);
    expect((await cluster.api<{ stage: string }>('/v1/models/digits/versions/5')).stage).toBe('none');
    const late = await cluster.startAgent('site-late', { offset: 5000, count: 100 });
    await waitUntil(
      () => late.status().models.some((m) => m.name === 'digits' && m.version === deployedVersion),
      20_000,
      'deployment to the late agent',
    );
  });

  it('keeps serving predictions while the coordinator is unreachable', async () => {
    await cluster.coordinator.stop();
    const res = await requestJson<{ model_version: string }>(
      `${agents[0].status().inferenceUrl}/v2/models/digits/infer`,
      {
        body: {
          inputs: [
            { name: 'input', shape: [784], datatype: 'FP32', data: Array.from(test.x.subarray(0, 784)) },
          ],
        },
      },
    );
    expect(Number(res.model_version)).toBeGreaterThanOrEqual(4);
  });
});

describe('a coordinator restart', () => {
  let cluster: TestCluster;
  let agents: EdgeAgent[];

  beforeAll(async () => {
    cluster = await startTestCluster();
    agents = [];
    for (let i = 0; i < 2; i++)
      agents.push(await cluster.startAgent(`site-${i + 1}`, { offset: i * 300, count: 300 }));
    await cluster.waitForAgents(2);
    await cluster.api('/v1/models', { name: 'digits', architecture: ARCH });
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('resumes an unfinished job after the last registered round, and agents reconnect and train again', async () => {
    const created = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 4,
      clientsPerRound: 2,
      minClients: 2,
      roundTimeoutSec: 60,
      epochs: 4,
      batchSize: 16,
      learningRate: 0.05,
    });
    await waitUntil(
      async () => (await cluster.api<JobView>(`/v1/jobs/${created.id}`)).rounds.length >= 1,
      30_000,
      'first round',
    );
    await cluster.restartCoordinator();
    const after = await cluster.api<JobView>(`/v1/jobs/${created.id}`);
    expect(after.state).toBe('running');
    await cluster.waitForAgents(2, 40_000);
    const job = await cluster.waitForJob(created.id);
    expect(job.state).toBe('completed');
    expect(job.rounds.map((r) => r.round)).toEqual([1, 2, 3, 4]);
    // Each round's version descends from the one before: no round was lost or done twice.
    const versions = job.rounds.map((r) => r.version);
    expect(versions).toEqual([2, 3, 4, 5]);
    const v5 = await cluster.api<VersionRecord>('/v1/models/digits/versions/5');
    expect(v5.parentVersion).toBe(4);
  });

  it('still refuses an agent revoked before the restart', async () => {
    const victim = agents[1].status().agentId;
    await cluster.api(`/v1/agents/${victim}/revoke`, {});
    await cluster.restartCoordinator();
    const list = await cluster.api<{ agents: Record<string, string>; serials: string[] }>('/v1/revocations');
    expect(Object.keys(list.agents)).toContain(victim);
    // The revoked agent itself gave up at close code 4003; dial with its credentials directly.
    const identity = await loadIdentity(join(cluster.dir, 'agents', 'site-2'));
    expect(await tryConnect(identity.agentUrl, identity.certPem, identity.keyPem, identity.caPem)).toBe(403);
  });
});

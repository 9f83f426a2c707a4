// An agent trains on the fast path in worker threads while its own thread keeps answering the
// coordinator's heartbeats and inference requests, and the job record says which path trained.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import { readMnist } from '../../edge-agent/index.ts';
import { requestJson } from '../../shared/http/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';

const ARCH: ModelArchitecture = {
  kind: 'mlp',
  inputShape: [784],
  layers: [200, 200, 10],
  activation: 'relu',
};

describe('training on worker threads', () => {
  let cluster: TestCluster;
  let agent: EdgeAgent;
  let image: number[];

  beforeAll(async () => {
    // A short heartbeat: an agent whose thread is busy for a few of them is disconnected.
    cluster = await startTestCluster({ heartbeatIntervalMs: 250, agentOptions: { trainingThreads: 2 } });
    agent = await cluster.startAgent('site-1', { offset: 0, count: 1000 });
    await cluster.waitForAgents(1);
    await cluster.api('/v1/models', { name: 'digits', architecture: ARCH });
    const test = await readMnist('test', { limit: 1 });
    image = Array.from(test.images, (v) => v / 255);
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('records the fast path in the job record and the agent status', async () => {
    const created = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 1,
      clientsPerRound: 1,
      minClients: 1,
      roundTimeoutSec: 60,
      epochs: 1,
      batchSize: 10,
      learningRate: 0.05,
      promote: 'if-better',
    });
    const job = await cluster.waitForJob(created.id);
    expect(job.state).toBe('completed');
    expect(job.rounds[0].participants).toEqual([
      expect.objectContaining({ agentId: agent.status().agentId, trainingPath: 'wasm-simd-fused' }),
    ]);
    expect(agent.status()).toMatchObject({ trainingPath: 'wasm-simd-fused', trainingThreads: 2 });
    await waitUntil(() => agent.status().models.some((m) => m.name === 'digits'), 20_000, 'deployment');
  });

  it('answers heartbeats and inference requests while it trains on all its threads', async () => {
    const created = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 1,
      clientsPerRound: 1,
      minClients: 1,
      roundTimeoutSec: 600,
      // Far longer than the requests below take: the job is cancelled once they are answered.
      epochs: 500,
      batchSize: 10,
      learningRate: 0.01,
    });
    const agentId = agent.status().agentId;
    const session = () => cluster.coordinator.gateway.session(agentId);
    await waitUntil(() => (session()?.inFlight ?? 0) > 0, 20_000, 'training task sent');
    const answered: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await requestJson<{ model_version: string }>(
        `${agent.status().inferenceUrl}/v2/models/digits/infer`,
        { body: { inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: image }] } },
      );
      answered.push(res.model_version);
    }
    expect(answered).toHaveLength(20);
    // Still training, still connected: every heartbeat meanwhile was answered in time.
    expect(session()?.inFlight).toBe(1);
    expect(cluster.coordinator.gateway.onlineAgentIds()).toContain(agentId);
    await cluster.api(`/v1/jobs/${created.id}/cancel`, {});
    const job = await cluster.waitForJob(created.id);
    expect(job.state).toBe('cancelled');
  });
});

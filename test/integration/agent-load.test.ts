// An edge agent under load keeps its coordinator link: a real coordinator with short heartbeats,
// and the agent as its own `loom agent start` process (an agent in the test's process would
// share the coordinator's event loop, so a blocked loop would stall the heartbeat check too and
// hide the very failure under test).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProcess, startAgentProcess, stopProcess } from '../../cli/agent-process.ts';
import type { AgentSession } from '../../coordinator/gateway/index.ts';
import { readMnist } from '../../edge-agent/index.ts';
import { openLocalModelStore } from '../../edge-agent/store/index.ts';
import { initialWeights, type ModelArchitecture } from '../../shared/models/index.ts';
import { startTestCluster, type TestCluster, waitUntil, writeMnistSubset } from '../helpers/cluster.ts';

const HEARTBEAT_MS = 400;
/** Wide enough that one prediction of the whole batch below holds a core for seconds. */
const WIDE: ModelArchitecture = {
  kind: 'mlp',
  inputShape: [784],
  layers: [2048, 2048, 10],
  activation: 'relu',
};
const SMALL = { kind: 'mlp', inputShape: [784], layers: [128, 10], activation: 'relu' };
const BATCH = 2000;

describe('an edge agent under load', () => {
  let cluster: TestCluster;
  let agent: AgentProcess;
  let agentId: string;
  let inferenceUrl: string;
  let session: AgentSession;
  const offline: string[] = [];
  let body: string;

  /** Resolves when the agent acknowledges `name`@`version` (a coordinator → agent → coordinator round trip). */
  function deployed(name: string, version: number): Promise<boolean> {
    return new Promise((resolve) => {
      const onAck = (ack: { agentId: string; name: string; version: number; ok: boolean }): void => {
        if (ack.agentId !== agentId || ack.name !== name || ack.version !== version) return;
        cluster.coordinator.gateway.off('deploy-ack', onAck);
        resolve(ack.ok);
      };
      cluster.coordinator.gateway.on('deploy-ack', onAck);
    });
  }

  async function deploy(name: string, version: number): Promise<void> {
    const ack = deployed(name, version);
    await cluster.coordinator.deployments.deploy(name, version);
    expect(await ack).toBe(true);
  }

  function inferBatch(): Promise<Response> {
    return fetch(`${inferenceUrl}/v2/models/wide/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
  }

  async function expectBatchAnswered(res: Response): Promise<void> {
    expect(res.status).toBe(200);
    const json = (await res.json()) as { outputs: { name: string; shape: number[] }[] };
    expect(json.outputs.map((o) => o.shape)).toEqual([
      [BATCH, 10],
      [BATCH, 1],
    ]);
  }

  beforeAll(async () => {
    cluster = await startTestCluster({ heartbeatIntervalMs: HEARTBEAT_MS });
    await cluster.api('/v1/models', { name: 'small', architecture: SMALL });
    const enrolled = await cluster.enroll('busy');
    agentId = enrolled.agentId;
    const dataPath = await writeMnistSubset(enrolled.dataDir, 0, 1000);
    // The wide model is in the agent's store before it starts: building one this size takes a
    // while, which is not what this file is about.
    const store = await openLocalModelStore(enrolled.dataDir);
    await store.put({
      name: 'wide',
      version: 1,
      architecture: WIDE,
      weights: (await initialWeights(WIDE)).weights,
    });
    await store.close();
    agent = startAgentProcess('busy', enrolled.dataDir, dataPath, join(cluster.dir, 'busy.log'));
    inferenceUrl = (await agent.ready).inferenceUrl;
    await cluster.waitForAgents(1, 30_000);
    session = cluster.coordinator.gateway.session(agentId)!;
    cluster.coordinator.gateway.on('offline', (e) => {
      if (e.agentId === agentId) offline.push(e.reason);
    });
    const mnist = await readMnist('test', { limit: BATCH });
    const rows = Array.from({ length: BATCH }, (_, i) =>
      Array.from(mnist.images.subarray(i * 784, (i + 1) * 784)),
    );
    body = JSON.stringify({
      inputs: [{ name: 'input', shape: [BATCH, 784], datatype: 'UINT8', data: rows }],
    });
  }, 120_000);

  afterAll(async () => {
    if (agent) await stopProcess(agent.child);
    await cluster?.close();
  });

  it('answers heartbeats and coordinator frames while it predicts a large batch', async () => {
    const answer = inferBatch();
    // A deployment is a frame to the agent and an acknowledgement back, sent while the batch runs.
    await deploy('small', 1);
    await expectBatchAnswered(await answer);
    expect(offline).toEqual([]);
    expect(cluster.coordinator.gateway.session(agentId)).toBe(session);
    expect(session.isClosed).toBe(false);
  }, 120_000);

  it('answers heartbeats while it trains, and while it trains and predicts at once', async () => {
    const created = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'small',
      rounds: 1,
      clientsPerRound: 1,
      minClients: 1,
      roundTimeoutSec: 120,
      epochs: 3,
      batchSize: 16,
      learningRate: 0.05,
    });
    await waitUntil(() => session.inFlight > 0, 30_000, 'the training task to reach the agent');
    await expectBatchAnswered(await inferBatch());
    const job = await cluster.waitForJob(created.id, 120_000);
    expect(job.state).toBe('completed');
    expect(job.rounds[0].participants.map((p) => p.agentId)).toEqual([agentId]);
    expect(job.rounds[0].failures).toEqual([]);
    expect(offline).toEqual([]);
    expect(cluster.coordinator.gateway.session(agentId)).toBe(session);
  }, 180_000);
});

// The edge agent against a real coordinator: diverged training, a damaged store, renewal mid-task.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateInfo } from '../../certs/index.ts';
import { EdgeAgent, loadIdentity } from '../../edge-agent/index.ts';
import { openLocalModelStore } from '../../edge-agent/store/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { initialWeights, type ModelArchitecture } from '../../shared/models/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';
import { loomAsync, type Run } from '../helpers/loom-cli.ts';

const FEATURES = 64;
const ARCH: ModelArchitecture = { kind: 'logistic', inputShape: [FEATURES], classes: 3 };
const silent = createLogger('silent');

/** CSV rows of FEATURES features and a label in [0, 3); `value(i)` gives the i-th feature value. */
function csv(rows: number, value: (i: number) => number): string {
  const lines = [[...Array.from({ length: FEATURES }, (_, c) => `x${c}`), 'label'].join(',')];
  for (let r = 0; r < rows; r++) {
    const features = Array.from({ length: FEATURES }, (_, c) => value(r * FEATURES + c));
    lines.push([...features, r % 3].join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** Ordinary data: small values, a model trained on it stays finite. */
const calm = (i: number): number => Math.sin(i * 0.7);
/**
 * Values at the edge of float32 with mixed signs: with this many features some logit overflows
 * in the first step whatever the initial weights (no miss in 3000 tries), so the loss and the
 * update come out NaN (on the plain JS backend, whose clip lets NaN through).
 */
const explosive = (i: number): number => (Math.sin(i * 12.9898 + 1) > 0 ? 3.4e38 : -3.4e38);

async function infer(agent: EdgeAgent, model: string): Promise<{ status: number; version?: string }> {
  const res = await fetch(`${agent.status().inferenceUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [
        { name: 'input', shape: [1, FEATURES], datatype: 'FP32', data: new Array(FEATURES).fill(0.5) },
      ],
    }),
  });
  const body = (await res.json()) as { model_version?: string };
  return { status: res.status, ...(body.model_version ? { version: body.model_version } : {}) };
}

describe('the edge agent', () => {
  let cluster: TestCluster;
  const agents: EdgeAgent[] = [];

  /**
   * Enrolls an agent with `rows` rows of CSV data; `prepare` may fill its data dir before it
   * starts.
   */
  async function startCsvAgent(
    name: string,
    value: (i: number) => number,
    prepare?: (dataDir: string) => Promise<void>,
    rows = 24,
  ): Promise<EdgeAgent> {
    const { dataDir } = await cluster.enroll(name);
    const dataPath = join(dataDir, 'data.csv');
    await writeFile(dataPath, csv(rows, value));
    await prepare?.(dataDir);
    const agent = new EdgeAgent({ dataDir, dataPath, inferencePort: 0, log: silent });
    agents.push(agent);
    await agent.start();
    return agent;
  }

  beforeAll(async () => {
    // Each test file runs in its own process: pinning the plain JS backend here affects only
    // this file, and it is the backend on which a diverged run reports a NaN loss (wasm's clip
    // turns NaN into a finite loss, hiding what the agent must cope with).
    await initCompute('cpu');
    cluster = await startTestCluster();
    await cluster.api('/v1/models', { name: 'tiny', architecture: ARCH });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
    await cluster?.close();
  });

  it('reports a diverged update as rejected without losing its connection', async () => {
    // Enough rows that the renewal test's task trains for seconds, whatever the kernels' speed.
    const steady = await startCsvAgent('steady', calm, undefined, 240);
    const diverging = await startCsvAgent('diverging', explosive);
    await cluster.waitForAgents(2);
    const divergingId = diverging.status().agentId;
    const session = cluster.coordinator.gateway.session(divergingId);
    expect(session).toBeDefined();

    const created = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'tiny',
      rounds: 1,
      clientsPerRound: 2,
      minClients: 1,
      roundTimeoutSec: 30,
      epochs: 1,
      batchSize: 8,
      learningRate: 0.1,
    });
    const job = await cluster.waitForJob(created.id);
    expect(job.state).toBe('completed');
    expect(job.rounds[0].participants.map((p) => p.agentId)).toEqual([steady.status().agentId]);
    expect(job.rounds[0].failures).toEqual([
      expect.objectContaining({ agentId: divergingId, code: 'LOOM_ERR_UPDATE_REJECTED' }),
    ]);
    // The same connection throughout: the result was a valid frame, only its update was refused.
    expect(cluster.coordinator.gateway.session(divergingId)).toBe(session);
    expect(session?.isClosed).toBe(false);
    expect(diverging.status().connected).toBe(true);
    await diverging.stop();
  });

  it('starts with a damaged stored model, serves the others and takes a good copy when sent one', async () => {
    await cluster.api('/v1/models', { name: 'gauge', architecture: ARCH });
    const mended = await startCsvAgent('mended', calm, async (dataDir) => {
      const store = await openLocalModelStore(dataDir);
      for (const name of ['gauge', 'spare']) {
        await store.put({
          name,
          version: 1,
          architecture: ARCH,
          weights: (await initialWeights(ARCH)).weights,
        });
      }
      await store.close();
      const db = new Level<string, string>(join(dataDir, 'models'));
      const blobs = db.sublevel<string, Uint8Array>('blob', { valueEncoding: 'view' });
      for await (const [key, value] of blobs.iterator()) {
        if (!key.startsWith('gauge/')) continue;
        const damaged = Uint8Array.from(value);
        damaged[damaged.length - 1] ^= 0xff;
        await blobs.put(key, damaged);
      }
      await db.close();
    });

    expect(mended.status().models).toContainEqual({ name: 'spare', version: 1 });
    expect(mended.status().models.some((m) => m.name === 'gauge')).toBe(false);
    // The start-up check found the damaged copy and removed it, rather than keep serving less.
    expect(mended.status().storeRepairs).toEqual([expect.stringMatching(/^gauge\//), 'active gauge']);
    expect(await infer(mended, 'spare')).toEqual({ status: 200, version: '1' });
    expect((await infer(mended, 'gauge')).status).toBe(404);

    await waitUntil(() => mended.status().connected, 20_000, 'the agent to connect');
    await cluster.coordinator.deployments.deploy('gauge', 1);
    await waitUntil(
      () => mended.status().models.some((m) => m.name === 'gauge' && m.version === 1),
      20_000,
      'the good copy of gauge@1',
    );
    expect(await infer(mended, 'gauge')).toEqual({ status: 200, version: '1' });
    expect(await infer(mended, 'spare')).toEqual({ status: 200, version: '1' });
    await mended.stop();
  });

  it('starts after the newest log of its model store was damaged: says what was lost, serves what is whole, gets the rest again', async () => {
    await cluster.api('/v1/models', { name: 'dial', architecture: ARCH });
    let checked: Run | undefined;
    const healed = await startCsvAgent('healed', calm, async (dataDir) => {
      const store = await openLocalModelStore(dataDir);
      for (let v = 1; v <= 3; v++) {
        await store.put({
          name: 'dial',
          version: v,
          architecture: ARCH,
          weights: (await initialWeights(ARCH)).weights,
        });
      }
      await store.close();
      const logs = (await readdir(join(dataDir, 'models'))).filter((f) => f.endsWith('.log')).sort();
      const log = join(dataDir, 'models', logs.at(-1)!);
      const bytes = await readFile(log);
      bytes.fill(0x41, bytes.length >> 1, (bytes.length >> 1) + 64);
      await writeFile(log, bytes);
      checked = await loomAsync(['agent', 'check', '--data-dir', dataDir, '--json']);
    });
    expect(checked?.status).toBe(1);
    const report = JSON.parse(checked!.stdout) as { ok: boolean; problems: { kind: string }[] };
    expect(report.problems.map((p) => p.kind)).toContain('level-recovery');
    // The agent's own start found the same (kept beside the store, as LevelDB rewrote the log),
    // reported it and repaired the store: only whole versions serve.
    expect(healed.status().storeProblems).toContainEqual(
      expect.stringMatching(/^\[level-recovery\] LevelDB dropped/),
    );
    await waitUntil(() => healed.status().connected, 20_000, 'the agent to connect');
    await cluster.coordinator.deployments.deploy('dial', 1);
    await waitUntil(
      () => healed.status().models.some((m) => m.name === 'dial' && m.version === 1),
      20_000,
      'dial@1 sent again',
    );
    expect(await infer(healed, 'dial')).toEqual({ status: 200, version: '1' });
    await healed.stop();
  });

  it('renews its certificate during training and reconnects only once the task is done', async () => {
    const steady = agents[0];
    const steadyId = steady.status().agentId;
    // Only this agent is asked to train; the coordinator sees the others leave a moment after
    // they stop.
    await waitUntil(
      () => cluster.coordinator.gateway.onlineAgentIds().join() === steadyId,
      20_000,
      'the other agents to go offline',
    );
    const dataDir = join(cluster.dir, 'agents', 'steady');
    const created = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'tiny',
      rounds: 1,
      clientsPerRound: 1,
      minClients: 1,
      roundTimeoutSec: 60,
      // Many short epochs over 216 examples: several seconds of training, and the event loop
      // turns the renewal needs come between epochs, so it completes well before the task does.
      epochs: 1000,
      batchSize: 1,
      learningRate: 0.05,
    });
    const session = () => cluster.coordinator.gateway.session(steadyId);
    await waitUntil(() => (session()?.inFlight ?? 0) > 0, 20_000, 'the training task to be sent');
    const before = session();
    const old = certificateInfo((await loadIdentity(dataDir)).certPem);

    await steady.renewIfDue(new Date(old.notAfter.getTime() - 60_000));
    const renewed = certificateInfo((await loadIdentity(dataDir)).certPem);
    expect(renewed.serial).not.toBe(old.serial);
    // Renewed while the task is still running on the connection it came on.
    expect(session()).toBe(before);
    expect(before?.inFlight).toBe(1);

    const job = await cluster.waitForJob(created.id);
    expect(job.state).toBe('completed');
    expect(job.rounds[0].failures).toEqual([]);
    expect(job.rounds[0].participants.map((p) => p.agentId)).toEqual([steadyId]);
    // Then it reconnects, presenting the renewed certificate.
    await waitUntil(
      async () =>
        (await cluster.coordinator.agents.get(steadyId)).certSerial === renewed.serial.toLowerCase(),
      20_000,
      'the renewed certificate to be used',
    );
    await cluster.waitForAgents(1);
  });
});

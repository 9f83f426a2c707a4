// A model of 200 MB trains and rolls out: its weights go to the agent, its update comes back and
// the new version goes out again through a rollout, each in chunks well under the 64 MiB frame limit (one frame of the
// whole would be refused by both sides).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import { DEFAULT_MAX_FRAME_BYTES } from '../../shared/protocol/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';

// 1000 → 10000 → 4000 → 10: 50,054,010 parameters, 200.2 MB of float32 weights.
const ARCH = { kind: 'mlp', inputShape: [1000], layers: [10_000, 4_000, 10], activation: 'relu' };
const FEATURES = 1000;

let cluster: TestCluster;
let agent: EdgeAgent;

beforeAll(async () => {
  cluster = await startTestCluster();
  agent = await cluster.startAgentWith('big-site', async (dir) => {
    const rows = Array.from({ length: 16 }, (_, r) =>
      [...Array.from({ length: FEATURES }, (_, i) => ((r * 31 + i * 7) % 100) / 100), r % 10].join(','),
    );
    const path = join(dir, 'data.csv');
    await writeFile(
      path,
      `${[...Array.from({ length: FEATURES }, (_, i) => `f${i}`), 'label'].join(',')}\n${rows.join('\n')}\n`,
    );
    return path;
  });
  await cluster.waitForAgents(1);
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

describe('a 200 MB model', () => {
  it('trains a round through chunked transfers both ways and rolls out to the site', async () => {
    // Nothing held out (16 examples): the job trains on them all and skips its evaluation, so this
    // test times the transfers of one round and one deployment only.
    const model = await cluster.api<{ paramCount: number }>('/v1/models', {
      name: 'wide',
      architecture: ARCH,
      holdoutFraction: 0,
    });
    expect(model.paramCount * 4).toBeGreaterThan(200_000_000);
    expect(model.paramCount * 4).toBeGreaterThan(2 * DEFAULT_MAX_FRAME_BYTES);
    const { id } = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'wide',
      rounds: 1,
      clientsPerRound: 1,
      minClients: 1,
      roundTimeoutSec: 600,
      batchSize: 16,
      learningRate: 0.01,
    });
    const job = await cluster.waitForJob(id, 600_000);
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    expect(job.rounds[0].participants).toHaveLength(1);
    expect(job.rounds[0].participants[0].norm).toBeGreaterThan(0);
    const v2 = await cluster.coordinator.registry.getVersion('wide', 2);
    expect(v2.paramCount).toBe(model.paramCount);

    // A rollout through the API sends the version to the site: 200 MB more, in chunks under
    // the frame limit, checked against the signed manifest before the site serves it.
    const rollout = await cluster.api<{ id: string }>('/v1/rollouts', {
      model: 'wide',
      version: 2,
      target: { all: true },
      waves: [100],
      healthWindowSec: 0.3,
    });
    let state = '';
    await waitUntil(
      async () => {
        state = (await cluster.coordinator.rollouts.get(rollout.id)).state;
        return state !== 'running';
      },
      300_000,
      'the rollout of wide@2 to end',
    );
    expect(state).toBe('completed');
    await waitUntil(
      () => agent.status().models.some((m) => m.name === 'wide' && m.version === 2),
      300_000,
      'the site to serve wide@2',
    );
    const res = await fetch(`${agent.status().inferenceUrl}/v2/models/wide/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [
          { name: 'input', shape: [1, FEATURES], datatype: 'FP32', data: new Array(FEATURES).fill(0.5) },
        ],
      }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model_version: string }).model_version).toBe('2');
  }, 900_000);
});

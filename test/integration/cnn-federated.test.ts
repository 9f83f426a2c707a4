// The FedAvg paper's CNN trains end to end in a small federated job: a real coordinator, two
// agents over mutual TLS on their own MNIST subsets, the fast path on each, and a final model
// more accurate than the initial one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMnist } from '../../edge-agent/index.ts';
import { buildModel, evaluateClassifier, writeWeights } from '../../shared/models/index.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';

describe('a federated CNN job', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster({ agentOptions: { trainingThreads: 1 } });
    await cluster.startAgent('site-1', { offset: 0, count: 400 });
    await cluster.startAgent('site-2', { offset: 400, count: 400 });
    await cluster.waitForAgents(2);
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('trains the built-in CNN on the fast path to beat its initial accuracy', async () => {
    await cluster.api('/v1/models', { name: 'digits-cnn', architecture: { kind: 'cnn' } });
    const created = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits-cnn',
      rounds: 2,
      clientsPerRound: 2,
      minClients: 2,
      roundTimeoutSec: 120,
      epochs: 1,
      batchSize: 10,
      learningRate: 0.05,
    });
    const job = await cluster.waitForJob(created.id, 120_000);
    expect(job.state).toBe('completed');
    expect(job.rounds).toHaveLength(2);
    for (const round of job.rounds) {
      expect(round.participants).toHaveLength(2);
      for (const p of round.participants) expect(p).toMatchObject({ trainingPath: 'wasm-simd-fused' });
    }
    const last = job.rounds[job.rounds.length - 1].version as number;
    const test = await readMnist('test', { limit: 500 });
    const x = Float32Array.from(test.images, (v) => v / 255);
    const model = await buildModel({ kind: 'cnn', inputShape: [28, 28, 1], classes: 10 });
    const accuracyOf = async (version: number): Promise<number> => {
      writeWeights(model, await cluster.coordinator.registry.getWeights('digits-cnn', version));
      return evaluateClassifier(model, x, test.labels, [28, 28, 1]).accuracy;
    };
    try {
      const initial = await accuracyOf(1);
      const final = await accuracyOf(last);
      expect(final).toBeGreaterThan(initial + 0.2);
      expect(final).toBeGreaterThan(0.5);
    } finally {
      model.dispose();
    }
  }, 150_000);
});

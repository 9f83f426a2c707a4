// Experiment records of jobs through a real coordinator and real agents (mTLS, LevelDB, MNIST
// subsets): the hyper-parameters, each agent's claimed software and dataset fingerprint, per-round
// metrics, and listing a model's jobs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord, JobView } from '../../coordinator/jobs/index.ts';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { LOOM_VERSION } from '../../shared/version/index.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';

const ARCH: ModelArchitecture = { kind: 'mlp', inputShape: [784], layers: [16, 10], activation: 'relu' };
const EXAMPLES = 150;

describe('experiment records', () => {
  let cluster: TestCluster;
  let agents: EdgeAgent[];
  let ids: string[];

  beforeAll(async () => {
    cluster = await startTestCluster();
    agents = [
      await cluster.startAgent('site-a', { offset: 0, count: EXAMPLES }),
      await cluster.startAgent('site-b', { offset: EXAMPLES, count: EXAMPLES }),
    ];
    ids = agents.map((a) => a.status().agentId);
    await cluster.waitForAgents(2);
    for (const name of ['digits', 'other']) {
      await cluster.api('/v1/models', { name, architecture: ARCH, holdoutFraction: 0.1 });
    }
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('records the hyper-parameters, each agent’s software and data fingerprint, and every round', async () => {
    const job = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 2,
      minClients: 2,
      learningRate: 0.1,
      batchSize: 16,
      roundTimeoutSec: 60,
    });
    const done = await cluster.waitForJob(job.id);
    expect(done.state).toBe('completed');
    const e = done.experiment!;
    expect(e.hyperParameters).toMatchObject({
      rounds: 2,
      epochs: 1,
      batchSize: 16,
      learningRate: 0.1,
      minClients: 2,
      engine: 'typed-array',
      baseVersion: 1,
      holdoutFraction: 0.1,
    });
    expect(Object.keys(e.agents).sort()).toEqual([...ids].sort());
    const backend = cluster.coordinator.backend.name;
    for (const id of ids) {
      expect(e.agents[id]).toMatchObject({
        software: { loom: LOOM_VERSION, node: process.version, training: `tfjs-${backend}` },
        firstRound: 1,
        lastRound: 2,
        rounds: 2,
      });
      expect(e.agents[id].dataFingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(e.agents[id].history).toBeUndefined();
    }
    // Different data, different fingerprints.
    expect(e.agents[ids[0]].dataFingerprint).not.toBe(e.agents[ids[1]].dataFingerprint);
    expect(e.rounds.map((r) => [r.round, r.state, r.participants, r.version])).toEqual([
      [1, 'completed', 2, 2],
      [2, 'completed', 2, 3],
    ]);
    for (const [i, r] of e.rounds.entries()) {
      expect(r.trainMetrics).toEqual(done.rounds[i].trainMetrics);
      expect(r.trainMetrics.loss).toBeGreaterThan(0);
    }
    // The final version was evaluated; the experiment shows it beside its round.
    expect(e.rounds[1].evaluation).toMatchObject({ state: 'completed' });
    expect(e.rounds[1].evaluation!.accuracy).toBeGreaterThan(0);
    // What each round used is in the round itself, per participant.
    for (const r of done.rounds) {
      for (const p of r.participants) {
        expect(p.claims?.dataFingerprint).toBe(e.agents[p.agentId].dataFingerprint);
      }
    }
  });

  it('lists the jobs of one model with ?model=', async () => {
    const other = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'other',
      rounds: 1,
      minClients: 2,
      roundTimeoutSec: 60,
    });
    await cluster.waitForJob(other.id);
    const [digits, others, all] = await Promise.all([
      cluster.api<{ jobs: JobRecord[] }>('/v1/jobs?model=digits'),
      cluster.api<{ jobs: JobRecord[] }>('/v1/jobs?model=other'),
      cluster.api<{ jobs: JobRecord[] }>('/v1/jobs'),
    ]);
    expect(digits.jobs.length).toBeGreaterThan(0);
    expect(digits.jobs.every((j) => j.config.model === 'digits')).toBe(true);
    expect(others.jobs.map((j) => j.id)).toEqual([other.id]);
    expect(others.jobs[0].experiment?.rounds).toHaveLength(1);
    expect(all.jobs.length).toBe(digits.jobs.length + 1);
    const view = await cluster.api<JobView>(`/v1/jobs/${other.id}`);
    expect(view.experiment?.hyperParameters.rounds).toBe(1);
  });
});

// Experiment records of jobs through a real coordinator and real agents (mTLS, LevelDB, MNIST
// subsets): the hyper-parameters, each agent's claimed software and dataset fingerprint, per-round
// metrics, listing a model's jobs, and jobs and evaluations that target agents by labels.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvaluationRecord } from '../../coordinator/evaluations/index.ts';
import type { JobRecord, JobView } from '../../coordinator/jobs/index.ts';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import { defaultTrainingPath } from '../../edge-agent/training/index.ts';
import { httpRequestRaw } from '../../shared/http/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { LOOM_VERSION } from '../../shared/version/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';

const ARCH: ModelArchitecture = { kind: 'mlp', inputShape: [784], layers: [16, 10], activation: 'relu' };
const EXAMPLES = 150;

type ErrorBody = { error: { code: string; message: string } };

async function call<T>(
  cluster: TestCluster,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await httpRequestRaw(`${cluster.apiUrl}${path}`, {
    method,
    ca: cluster.caPem,
    headers: { authorization: `Bearer ${cluster.adminToken}` },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, body: JSON.parse(res.body.toString('utf8')) as T };
}

async function evaluationEnd(cluster: TestCluster, id: string): Promise<EvaluationRecord> {
  let record: EvaluationRecord | undefined;
  await waitUntil(
    async () => {
      record = await cluster.api<EvaluationRecord>(`/v1/models/digits/evaluations/${id}`);
      return record.state !== 'running';
    },
    60_000,
    `evaluation ${id} to end`,
  );
  return record!;
}

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
    // The MLP trains on the fast path unless a native TensorFlow package is installed.
    const training = defaultTrainingPath();
    for (const id of ids) {
      expect(e.agents[id]).toMatchObject({
        software: { loom: LOOM_VERSION, node: process.version, training },
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

  describe('label targeting', () => {
    beforeAll(async () => {
      await cluster.api(`/v1/agents/${ids[0]}/labels`, { labels: { site: 'a', tier: 'edge' } }, 'PUT');
      await cluster.api(`/v1/agents/${ids[1]}/labels`, { labels: { site: 'b', tier: 'edge' } }, 'PUT');
    });

    it('a job with labels trains only on the agents that carry them all, and records them', async () => {
      const job = await cluster.api<JobRecord>('/v1/jobs', {
        model: 'digits',
        rounds: 2,
        labels: { site: 'a', tier: 'edge' },
        roundTimeoutSec: 60,
      });
      expect(job.config.labels).toEqual({ site: 'a', tier: 'edge' });
      const done = await cluster.waitForJob(job.id);
      expect(done.state).toBe('completed');
      for (const r of done.rounds) {
        expect(r.sampled).toEqual([ids[0]]);
        expect(r.participants.map((p) => p.agentId)).toEqual([ids[0]]);
      }
      expect(done.experiment?.labels).toEqual({ site: 'a', tier: 'edge' });
      expect(Object.keys(done.experiment!.agents)).toEqual([ids[0]]);
      expect(done.experiment!.agents[ids[0]].labels).toEqual({ site: 'a', tier: 'edge' });
      // Its final evaluation asked the same agents only.
      const evaluation = await cluster.api<EvaluationRecord>(
        `/v1/models/digits/evaluations/${done.evaluations![0].evaluationId}`,
      );
      expect(evaluation.asked).toEqual([ids[0]]);
      expect(evaluation.request.labels).toEqual({ site: 'a', tier: 'edge' });
    });

    it('counts only the matching agents toward a job’s quorum', async () => {
      const job = await cluster.api<JobRecord>('/v1/jobs', {
        model: 'digits',
        rounds: 1,
        minClients: 2,
        labels: { site: 'b' },
        roundTimeoutSec: 1.5,
      });
      const done = await cluster.waitForJob(job.id);
      expect(done.state).toBe('failed');
      expect(done.error?.code).toBe('LOOM_ERR_ROUND_QUORUM');
      expect(done.rounds[0].sampled).toEqual([ids[1]]);
    });

    it('an evaluation with labels evaluates only the matching agents, and minClients counts only them', async () => {
      const started = await call<EvaluationRecord>(
        cluster,
        'POST',
        '/v1/models/digits/versions/1/evaluations',
        {
          labels: { site: 'b' },
          timeoutSec: 60,
        },
      );
      expect(started.status).toBe(202);
      expect(started.body.request.labels).toEqual({ site: 'b' });
      const record = await evaluationEnd(cluster, started.body.id);
      expect(record.state).toBe('completed');
      expect(record.asked).toEqual([ids[1]]);
      expect(record.results.map((r) => r.agentId)).toEqual([ids[1]]);

      const both = await call<EvaluationRecord>(cluster, 'POST', '/v1/models/digits/versions/1/evaluations', {
        labels: { tier: 'edge' },
        minClients: 2,
        timeoutSec: 60,
      });
      expect((await evaluationEnd(cluster, both.body.id)).results).toHaveLength(2);

      const short = await call<EvaluationRecord>(
        cluster,
        'POST',
        '/v1/models/digits/versions/1/evaluations',
        {
          labels: { site: 'a' },
          minClients: 2,
          timeoutSec: 1.5,
        },
      );
      const failed = await evaluationEnd(cluster, short.body.id);
      expect(failed.state).toBe('failed');
      expect(failed.error?.code).toBe('LOOM_ERR_ROUND_QUORUM');
      expect(failed.asked).toEqual([ids[0]]);
    });

    it('refuses agents with labels, labels that select nobody, and malformed labels, naming the field', async () => {
      const path = '/v1/models/digits/versions/1/evaluations';
      const both = await call<ErrorBody>(cluster, 'POST', path, { agents: [ids[0]], labels: { site: 'a' } });
      expect(both.status).toBe(400);
      expect(both.body.error.code).toBe('LOOM_ERR_INVALID_ARGUMENT');
      expect(both.body.error.message).toMatch(/^labels /);
      for (const [route, body] of [
        [path, { labels: { site: 'nowhere' } }],
        ['/v1/jobs', { model: 'digits', labels: { site: 'nowhere' } }],
      ] as const) {
        const none = await call<ErrorBody>(cluster, 'POST', route, body);
        expect(none.status).toBe(409);
        expect(none.body.error.code).toBe('LOOM_ERR_NO_TARGETS');
        expect(none.body.error.message).toMatch(/^labels: /);
      }
      for (const labels of [{}, { 'bad key!': 'x' }, { site: 7 }, ['site=a']]) {
        for (const route of [path, '/v1/jobs']) {
          const bad = await call<ErrorBody>(
            cluster,
            'POST',
            route,
            route === path ? { labels } : { model: 'digits', labels },
          );
          expect(bad.status).toBe(400);
          expect(bad.body.error.message).toMatch(/^labels/);
        }
      }
    });
  });
});

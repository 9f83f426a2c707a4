// Federated evaluation through a real coordinator and real agents (mTLS, LevelDB, MNIST subsets):
// per-site hold-out results and their example-weighted aggregate, jobs that evaluate their
// versions, the cross-site matrix, role boundaries, forged reports and a restart mid-evaluation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../certs/index.ts';
import type { Role } from '../../coordinator/directory/index.ts';
import type { EvaluationMatrix, EvaluationRecord } from '../../coordinator/evaluations/index.ts';
import type { JobView } from '../../coordinator/jobs/index.ts';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import { httpRequestRaw } from '../../shared/http/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { holdoutCount } from '../../shared/protocol/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';
import { type RogueAgent, startRogueAgent } from '../helpers/rogue-agent.ts';

const ARCH: ModelArchitecture = { kind: 'mlp', inputShape: [784], layers: [32, 10], activation: 'relu' };
const EXAMPLES = 400;
const HOLDOUT = 0.2;

interface Reply<T> {
  status: number;
  body: T;
}

async function call<T>(
  cluster: TestCluster,
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown; raw?: string } = {},
): Promise<Reply<T>> {
  const token = opts.token === undefined ? cluster.adminToken : opts.token;
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.raw !== undefined) headers['content-type'] = 'application/json';
  const res = await httpRequestRaw(`${cluster.apiUrl}${path}`, {
    method,
    ca: cluster.caPem,
    headers,
    ...(opts.raw !== undefined
      ? { body: Buffer.from(opts.raw) }
      : opts.body === undefined
        ? {}
        : { body: opts.body }),
  });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return { status: res.status, body: JSON.parse(res.body.toString('utf8')) as T };
}

async function addToken(cluster: TestCluster, role: Role): Promise<string> {
  const t = createApiToken();
  await cluster.coordinator.tokens.addApiToken({
    id: t.id,
    hash: t.hash,
    role,
    name: `${role}-${t.id}`,
    createdAt: new Date().toISOString(),
  });
  return t.token;
}

type ErrorReply = { error: { code: string; message: string } };

function expectError(reply: Reply<unknown>, status: number, code: string, message?: RegExp): void {
  expect(reply.status).toBe(status);
  const body = reply.body as ErrorReply;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  if (message) expect(body.error.message).toMatch(message);
}

async function waitForEvaluation(cluster: TestCluster, model: string, id: string): Promise<EvaluationRecord> {
  let record: EvaluationRecord | undefined;
  await waitUntil(
    async () => {
      record = (await call<EvaluationRecord>(cluster, 'GET', `/v1/models/${model}/evaluations/${id}`)).body;
      return record.state !== 'running';
    },
    60_000,
    `evaluation ${id} to end`,
  );
  return record!;
}

describe('federated evaluation', () => {
  let cluster: TestCluster;
  let agents: EdgeAgent[];
  let ids: string[];
  let viewer: string;
  let operator: string;

  beforeAll(async () => {
    cluster = await startTestCluster();
    agents = [
      await cluster.startAgent('site-a', { offset: 0, count: EXAMPLES }),
      await cluster.startAgent('site-b', { offset: EXAMPLES, count: EXAMPLES }),
    ];
    ids = agents.map((a) => a.status().agentId);
    await cluster.waitForAgents(2);
    viewer = await addToken(cluster, 'viewer');
    operator = await addToken(cluster, 'operator');
    const created = await call(cluster, 'POST', '/v1/models', {
      body: { name: 'digits', architecture: ARCH, holdoutFraction: HOLDOUT },
    });
    expect(created.status).toBe(201);
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('a job evaluates every N rounds and always its final version, and its record shows the results', async () => {
    const job = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 3,
      evaluateEvery: 2,
      minClients: 2,
      epochs: 1,
      batchSize: 32,
      learningRate: 0.1,
      roundTimeoutSec: 60,
    });
    const done = await cluster.waitForJob(job.id);
    expect(done.state).toBe('completed');
    // Trained on the training part only: the hold-out share of each site is never sent to training.
    for (const p of done.rounds[0].participants)
      expect(p.numExamples).toBe(EXAMPLES - holdoutCount(EXAMPLES, HOLDOUT));
    expect(done.evaluations?.map((e) => [e.round, e.version, e.state])).toEqual([
      [2, 3, 'completed'],
      [3, 4, 'completed'],
    ]);
    const final = done.evaluations![1];
    expect(final.sites).toBe(2);
    expect(final.numExamples).toBe(2 * holdoutCount(EXAMPLES, HOLDOUT));
    expect(final.accuracy).toBeGreaterThan(0.5);
    const record = (
      await call<EvaluationRecord>(cluster, 'GET', `/v1/models/digits/evaluations/${final.evaluationId}`)
    ).body;
    expect(record).toMatchObject({ jobId: job.id, version: 4, state: 'completed', holdoutFraction: HOLDOUT });
  });

  it('evaluates a version on the named sites: per-site results and the example-weighted aggregate', async () => {
    const started = await call<EvaluationRecord>(
      cluster,
      'POST',
      '/v1/models/digits/versions/1/evaluations',
      {
        token: operator,
        body: { agents: ids, minClients: 2, timeoutSec: 60 },
      },
    );
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ model: 'digits', version: 1, state: 'running' });
    const record = await waitForEvaluation(cluster, 'digits', started.body.id);
    expect(record.state).toBe('completed');
    expect(record.results.map((r) => r.agentId).sort()).toEqual([...ids].sort());
    for (const r of record.results) {
      expect(r.numExamples).toBe(holdoutCount(EXAMPLES, HOLDOUT));
      expect(r.confusion.flat().reduce((a, b) => a + b, 0)).toBe(r.numExamples);
    }
    const agg = record.aggregate!;
    const n = record.results.reduce((s, r) => s + r.numExamples, 0);
    expect(agg.numExamples).toBe(n);
    expect(agg.loss).toBeCloseTo(record.results.reduce((s, r) => s + r.loss * r.numExamples, 0) / n, 9);
    expect(agg.accuracy).toBeCloseTo(
      record.results.reduce((s, r) => s + r.accuracy * r.numExamples, 0) / n,
      9,
    );
    expect(agg.confusion.flat().reduce((a, b) => a + b, 0)).toBe(n);
    // The untrained version 1 does worse than what the job made.
    const matrix = (await call<{ matrix: EvaluationMatrix }>(cluster, 'GET', '/v1/models/digits/evaluations'))
      .body.matrix;
    const v1 = matrix.versions.find((v) => v.version === 1)!;
    const v4 = matrix.versions.find((v) => v.version === 4)!;
    expect(v4.aggregate!.accuracy).toBeGreaterThan(v1.aggregate!.accuracy);
    expect(matrix.agents).toEqual([...ids].sort());
    expect(Object.keys(v1.agents).sort()).toEqual([...ids].sort());
    expect(v1.agents[ids[0]]).toMatchObject({
      numExamples: holdoutCount(EXAMPLES, HOLDOUT),
      evaluationId: record.id,
    });
  });

  it('is audited as started by the caller', async () => {
    const audit = (
      await call<{ entries: { actor: string; action: string; target: string }[] }>(
        cluster,
        'GET',
        '/v1/audit?limit=1000',
      )
    ).body.entries.filter((e) => e.action === 'evaluation.start');
    expect(audit.some((e) => e.target === 'digits@1' && e.actor.startsWith('operator-'))).toBe(true);
  });

  it('keeps role boundaries: viewers read, operators start, nobody without a token', async () => {
    const path = '/v1/models/digits/versions/1/evaluations';
    expectError(await call(cluster, 'POST', path, { token: viewer, body: {} }), 403, 'LOOM_ERR_FORBIDDEN');
    expectError(await call(cluster, 'POST', path, { token: null, body: {} }), 401, 'LOOM_ERR_UNAUTHORIZED');
    expectError(
      await call(cluster, 'GET', '/v1/models/digits/evaluations', { token: null }),
      401,
      'LOOM_ERR_UNAUTHORIZED',
    );
    const listed = await call<{ evaluations: EvaluationRecord[] }>(
      cluster,
      'GET',
      '/v1/models/digits/evaluations',
      {
        token: viewer,
      },
    );
    expect(listed.status).toBe(200);
    const one = listed.body.evaluations[0];
    expect(
      (await call(cluster, 'GET', `/v1/models/digits/evaluations/${one.id}`, { token: viewer })).status,
    ).toBe(200);
  });

  it.each([
    ['a body that is not JSON', { raw: '{"agents":' }, 400, 'LOOM_ERR_INVALID_ARGUMENT'],
    [
      'an unknown field',
      { body: { agent: ['x'] } },
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
      /agent is not a known field/,
    ],
    [
      'agents and labels together',
      { body: { agents: ['site-a'], labels: { site: 'a' } } },
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
      /^labels cannot be given together with agents/,
    ],
    [
      'a label that is not a string',
      { body: { labels: { site: 1 } } },
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
      /labels\.site/,
    ],
    [
      'labels no agent carries',
      { body: { labels: { site: 'nowhere' } } },
      409,
      'LOOM_ERR_NO_TARGETS',
      /labels/,
    ],
    ['agents that is not a list', { body: { agents: 'site-a' } }, 400, 'LOOM_ERR_INVALID_ARGUMENT', /agents/],
    ['an empty agent list', { body: { agents: [] } }, 400, 'LOOM_ERR_INVALID_ARGUMENT', /agents/],
    ['minClients 0', { body: { minClients: 0 } }, 400, 'LOOM_ERR_INVALID_ARGUMENT', /minClients/],
    ['a negative timeout', { body: { timeoutSec: -1 } }, 400, 'LOOM_ERR_INVALID_ARGUMENT', /timeoutSec/],
    ['an agent that is not enrolled', { body: { agents: ['nobody'] } }, 404, 'LOOM_ERR_NOT_FOUND', /nobody/],
  ] as const)('refuses %s with a clear error', async (_what, opts, status, code, message?: RegExp) => {
    const reply = await call(cluster, 'POST', '/v1/models/digits/versions/1/evaluations', { ...opts });
    expectError(reply, status, code, message);
  });

  it('refuses an unknown model, version or evaluation', async () => {
    expectError(
      await call(cluster, 'POST', '/v1/models/nope/versions/1/evaluations', { body: {} }),
      404,
      'LOOM_ERR_NOT_FOUND',
    );
    expectError(
      await call(cluster, 'POST', '/v1/models/digits/versions/99/evaluations', { body: {} }),
      404,
      'LOOM_ERR_NOT_FOUND',
    );
    expectError(
      await call(cluster, 'POST', '/v1/models/digits/versions/0/evaluations', { body: {} }),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
    );
    expectError(
      await call(cluster, 'GET', '/v1/models/digits/evaluations/eval-missing'),
      404,
      'LOOM_ERR_NOT_FOUND',
    );
    expectError(await call(cluster, 'GET', '/v1/models/nope/evaluations'), 404, 'LOOM_ERR_NOT_FOUND');
    expectError(
      await call(cluster, 'GET', '/v1/models/digits/evaluations?colour=red'),
      400,
      'LOOM_ERR_INVALID_ARGUMENT',
    );
  });

  describe('with enrolled agents that lie', () => {
    let liars: RogueAgent[];

    beforeAll(async () => {
      liars = [
        // Declares 100 examples (10 hold-out) but claims 5,000.
        await startRogueAgent(cluster, 'boaster', {
          declared: 100,
          answer: () => undefined,
          evaluation: () => ({
            numExamples: 5_000,
            loss: 0.01,
            accuracy: 1,
            confusion: Array.from({ length: 10 }, (_, i) =>
              Array.from({ length: 10 }, (_, j) => (i === j && i === 0 ? 5_000 : 0)),
            ),
            evalMs: 1,
          }),
        }),
        // A perfect accuracy its own confusion matrix does not support.
        await startRogueAgent(cluster, 'flatterer', {
          declared: 100,
          answer: () => undefined,
          evaluation: () => ({
            numExamples: 10,
            loss: 0.01,
            accuracy: 1,
            confusion: Array.from({ length: 10 }, (_, i) =>
              Array.from({ length: 10 }, (_, j) => (i === 0 && j === 1 ? 10 : 0)),
            ),
            evalMs: 1,
          }),
        }),
        // A matrix of the wrong shape.
        await startRogueAgent(cluster, 'misshapen', {
          declared: 100,
          answer: () => undefined,
          evaluation: () => ({
            numExamples: 4,
            loss: 0.2,
            accuracy: 1,
            confusion: [
              [2, 0],
              [0, 2],
            ],
            evalMs: 1,
          }),
        }),
      ];
      await cluster.waitForAgents(5);
    });

    afterAll(async () => {
      await Promise.all(liars.map((l) => l.stop()));
    });

    it("records each forged report as that agent's failure with the reason, and aggregates only honest sites", async () => {
      const started = await call<EvaluationRecord>(
        cluster,
        'POST',
        '/v1/models/digits/versions/4/evaluations',
        {
          body: { minClients: 2, timeoutSec: 60, agents: [...ids, ...liars.map((l) => l.agentId)] },
        },
      );
      expect(started.status).toBe(202);
      const record = await waitForEvaluation(cluster, 'digits', started.body.id);
      expect(record.state).toBe('completed');
      expect(record.results.map((r) => r.agentId).sort()).toEqual([...ids].sort());
      const failures = Object.fromEntries(record.failures.map((f) => [f.agentId, f]));
      const [boaster, flatterer, misshapen] = liars.map((l) => failures[l.agentId]);
      expect(boaster).toMatchObject({ code: 'LOOM_ERR_UPDATE_REJECTED' });
      expect(boaster.reason).toMatch(/claims 5000 hold-out examples; the agent declared 100/);
      expect(flatterer.reason).toMatch(/accuracy 1 is not the confusion matrix's 0\.000000/);
      expect(misshapen.reason).toMatch(/2 rows; the model has 10 classes/);
      expect(record.aggregate!.numExamples).toBe(2 * holdoutCount(EXAMPLES, HOLDOUT));
      // The liars are visible in the list, and they do not make it into the matrix.
      const matrix = (
        await call<{ matrix: EvaluationMatrix }>(cluster, 'GET', '/v1/models/digits/evaluations')
      ).body.matrix;
      expect(matrix.agents).toEqual([...ids].sort());
    });

    it('caps a hostile site that reports a perfect accuracy: the aggregate moves by at most its capped share', async () => {
      // Declares 5,000 examples (1,000 hold-out) and reports a consistent, perfect evaluation of them.
      const inflater = await startRogueAgent(cluster, 'inflater', {
        declared: 5_000,
        answer: () => undefined,
        evaluation: () => ({
          numExamples: 1_000,
          loss: 0,
          accuracy: 1,
          confusion: Array.from({ length: 10 }, (_, i) =>
            Array.from({ length: 10 }, (_, j) => (i === j ? 100 : 0)),
          ),
          evalMs: 1,
        }),
      });
      try {
        const started = await call<EvaluationRecord>(
          cluster,
          'POST',
          '/v1/models/digits/versions/4/evaluations',
          { body: { agents: [...ids, inflater.agentId], minClients: 3, timeoutSec: 60 } },
        );
        expect(started.status).toBe(202);
        const record = await waitForEvaluation(cluster, 'digits', started.body.id);
        expect(record.state).toBe('completed');
        const honest = record.results.filter((r) => r.agentId !== inflater.agentId);
        const hostile = record.results.find((r) => r.agentId === inflater.agentId)!;
        expect(honest).toHaveLength(2);
        const n = holdoutCount(EXAMPLES, HOLDOUT);
        // 1.5 × the lower median of the declared hold-out sizes [80, 80, 1000].
        const cap = Math.floor(1.5 * n);
        expect(record.aggregate!.weightCap).toBe(cap);
        expect(hostile).toMatchObject({ numExamples: 1_000, weight: cap, accuracy: 1 });
        for (const r of honest) expect(r.weight).toBe(n);
        const fair = honest.reduce((s, r) => s + r.accuracy * r.numExamples, 0) / (2 * n);
        const moved = record.aggregate!.accuracy - fair;
        expect(moved).toBeGreaterThan(0);
        expect(moved).toBeLessThanOrEqual((cap / (2 * n + cap)) * (1 - fair) + 1e-9);
        // Uncapped, it would have held 1000 of 1160 examples' weight.
        const uncapped = (fair * 2 * n + 1_000) / (2 * n + 1_000);
        expect(record.aggregate!.accuracy).toBeLessThan(uncapped);
        // The median across sites stays an honest site's value, and the gate takes the worse figure.
        expect(record.aggregate!.median.accuracy).toBeLessThanOrEqual(
          Math.max(...honest.map((r) => r.accuracy)),
        );
        expect(record.aggregate!.numExamples).toBe(2 * n + 1_000);
      } finally {
        await inflater.stop();
      }
    });

    it('marks an evaluation that was running when the coordinator stopped as failed, with the reason', async () => {
      const silent = liars[0];
      silent.evaluation = () => 'silent';
      const started = await call<EvaluationRecord>(
        cluster,
        'POST',
        '/v1/models/digits/versions/4/evaluations',
        {
          body: { agents: [silent.agentId], timeoutSec: 3_600 },
        },
      );
      expect(started.status).toBe(202);
      await waitUntil(
        () => silent.evaluations.some((e) => e.evaluationId === started.body.id),
        20_000,
        'the task',
      );
      await cluster.restartCoordinator();
      const record = (
        await call<EvaluationRecord>(cluster, 'GET', `/v1/models/digits/evaluations/${started.body.id}`)
      ).body;
      expect(record.state).toBe('failed');
      expect(record.error?.message).toMatch(/coordinator stopped while the evaluation ran/);
      // Completed evaluations survived the restart with their results.
      const list = (
        await call<{ evaluations: (EvaluationRecord & { sites: number })[] }>(
          cluster,
          'GET',
          '/v1/models/digits/evaluations?state=completed',
        )
      ).body.evaluations;
      expect(list.length).toBeGreaterThanOrEqual(4);
      expect(list.every((e) => e.sites >= 2)).toBe(true);
    });
  });

  it('a job record in the list carries its evaluations too', async () => {
    const jobs = (await call<{ jobs: JobView[] }>(cluster, 'GET', '/v1/jobs?model=digits')).body.jobs;
    expect(jobs[0].evaluations?.length).toBe(2);
  });

  it('a job with promote: if-better that fails the gate leaves its version a candidate, saying why', async () => {
    // The two honest sites, back after the restart above.
    await waitUntil(
      () => ids.every((id) => cluster.coordinator.gateway.onlineAgentIds().includes(id)),
      30_000,
      'the sites to reconnect',
    );
    expect(
      (
        await call(cluster, 'PUT', '/v1/models/digits/policy', {
          body: { metric: 'accuracy', min: 0.999, stageOnComplete: 'staging' },
        })
      ).status,
    ).toBe(200);
    const { id } = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 1,
      minClients: 2,
      roundTimeoutSec: 60,
      promote: 'if-better',
    });
    const job = await cluster.waitForJob(id);
    expect(job.state).toBe('completed');
    expect(job.promotion).toMatchObject({ version: job.latestVersion, stage: 'staging', promoted: false });
    // The gate judges the worse of the weighted aggregate and the median across sites, and says which.
    expect(job.promotion?.reasons?.join(' ')).toMatch(
      /accuracy 0\.\d+( \(the median across sites\))? is below the policy's min 0\.999/,
    );
    const model = (await call<{ deployedVersion: number | null }>(cluster, 'GET', '/v1/models/digits')).body;
    expect(model.deployedVersion).toBeNull();
    expect(
      (await call<{ stage: string }>(cluster, 'GET', `/v1/models/digits/versions/${job.latestVersion}`)).body
        .stage,
    ).toBe('staging');
  });
});

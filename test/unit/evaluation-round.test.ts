// Federated evaluation against an in-memory AgentPool: checked reports, lying agents, quorum,
// deadline, the example-weighted aggregate.
import { describe, expect, it } from 'vitest';
import {
  type AgentPool,
  aggregateEvaluations,
  checkEvaluation,
  type EvaluateOutcome,
  type EvaluateTask,
  type EvaluationPlan,
  runEvaluationRound,
  type TrainOutcome,
} from '../../coordinator/rounds/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { type DatasetSummary, decodeTensorBytes } from '../../shared/protocol/index.ts';
import { datasetSummary } from '../helpers/dataset.ts';

type Behaviour = (task: EvaluateTask) => Promise<EvaluateOutcome>;

class EvaluatingPool implements AgentPool {
  readonly sent: { agentId: string; task: EvaluateTask }[] = [];
  readonly cancelled: string[] = [];
  readonly declared = new Map<string, number>();
  private readonly listeners = new Set<(id: string) => void>();
  constructor(public online: Map<string, Behaviour>) {}
  onlineAgentIds(): string[] {
    return [...this.online.keys()];
  }
  datasetOf(agentId: string): DatasetSummary | undefined {
    const n = this.declared.get(agentId) ?? 100;
    return datasetSummary(n);
  }
  runTrainTask(): Promise<TrainOutcome> {
    return Promise.reject(new LoomError('LOOM_ERR_TASK_FAILED', 'no training here'));
  }
  runEvaluateTask(agentId: string, task: EvaluateTask): Promise<EvaluateOutcome> {
    this.sent.push({ agentId, task });
    const b = this.online.get(agentId);
    if (!b) return Promise.reject(new LoomError('LOOM_ERR_AGENT_DISCONNECTED', 'gone'));
    return b(task);
  }
  cancelTask(_agentId: string, taskId: string): void {
    this.cancelled.push(taskId);
  }
  onAgentOnline(listener: (id: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  connect(agentId: string, b: Behaviour): void {
    this.online.set(agentId, b);
    for (const l of this.listeners) l(agentId);
  }
}

/** An honest report of `right` of `n` examples right, 2 classes. */
function report(n: number, right: number, loss = 0.3): EvaluateOutcome {
  const wrong = n - right;
  return {
    numExamples: n,
    loss,
    accuracy: right / n,
    confusion: [
      [right, wrong],
      [0, 0],
    ],
    evalMs: 2,
  };
}

const answers =
  (outcome: EvaluateOutcome, delayMs = 0): Behaviour =>
  () =>
    new Promise((resolve) => setTimeout(() => resolve(outcome), delayMs));
const never: Behaviour = () => new Promise(() => {});

function plan(overrides: Partial<EvaluationPlan> = {}): EvaluationPlan {
  return {
    evaluationId: 'eval-1',
    model: { name: 'm', version: 3, architecture: { kind: 'logistic', inputShape: [1], classes: 2 } },
    classes: 2,
    weights: [{ name: 'w', shape: [2], dtype: 'float32', data: new Float32Array([1, 2]) }],
    holdoutFraction: 0.1,
    minClients: 1,
    timeoutMs: 2_000,
    ...overrides,
  };
}

const log = createLogger('silent');

describe('checkEvaluation', () => {
  const bounds = { classes: 2, declaredExamples: 100, holdoutFraction: 0.1 };

  it('accepts an honest report and recomputes accuracy from the matrix', () => {
    expect(checkEvaluation(report(10, 7), bounds)).toEqual({
      numExamples: 10,
      loss: 0.3,
      accuracy: 0.7,
      confusion: [
        [7, 3],
        [0, 0],
      ],
    });
  });

  it.each([
    ['no examples', { ...report(10, 7), numExamples: 0 }, 'examples'],
    ['more examples than its hold-out share of what it declared', report(11, 7), 'examples'],
    ['an infinite loss', { ...report(10, 7), loss: Number.POSITIVE_INFINITY }, 'loss'],
    ['a negative loss', { ...report(10, 7), loss: -0.1 }, 'loss'],
    ['a matrix with a missing row', { ...report(10, 7), confusion: [[7, 3]] }, 'confusion'],
    ['a matrix with a short row', { ...report(10, 7), confusion: [[7, 3], [0]] }, 'confusion'],
    [
      'a negative count',
      {
        ...report(10, 7),
        confusion: [
          [11, -1],
          [0, 0],
        ],
      },
      'confusion',
    ],
    [
      'a fractional count',
      {
        ...report(10, 7),
        confusion: [
          [6.5, 3.5],
          [0, 0],
        ],
      },
      'confusion',
    ],
    [
      'a matrix that does not sum to the example count',
      {
        ...report(10, 7),
        confusion: [
          [7, 2],
          [0, 0],
        ],
      },
      'confusion',
    ],
    ['an accuracy the matrix does not give', { ...report(10, 7), accuracy: 0.99 }, 'accuracy'],
  ] as const)('rejects a report with %s', (_what, outcome, reason) => {
    expect(() => checkEvaluation(outcome as EvaluateOutcome, bounds)).toThrow(
      expect.objectContaining({ code: 'LOOM_ERR_UPDATE_REJECTED', details: { reason } }),
    );
  });

  it('weights the aggregate by examples and sums the matrices', () => {
    const a = checkEvaluation(report(10, 9, 0.1), bounds);
    const b = checkEvaluation(report(30, 15, 0.5), { ...bounds, declaredExamples: 300 });
    const agg = aggregateEvaluations([a, b])!;
    expect(agg.numExamples).toBe(40);
    expect(agg.accuracy).toBeCloseTo(24 / 40, 12);
    expect(agg.loss).toBeCloseTo((10 * 0.1 + 30 * 0.5) / 40, 12);
    expect(agg.confusion).toEqual([
      [24, 16],
      [0, 0],
    ]);
    expect(aggregateEvaluations([])).toBeUndefined();
    expect(agg.median).toEqual({ accuracy: (0.9 + 0.5) / 2, loss: (0.1 + 0.5) / 2 });
    expect(agg.weightCap).toBeUndefined();
  });

  it('caps one site’s weight, so a perfect report moves the aggregate by at most its capped share', () => {
    const honest = [0, 1].map(() => checkEvaluation(report(10, 6), bounds));
    const perfect = checkEvaluation(report(1000, 1000), { ...bounds, declaredExamples: 10_000 });
    const fair = aggregateEvaluations(honest)!;
    const uncapped = aggregateEvaluations([...honest, perfect])!;
    const capped = aggregateEvaluations([...honest, perfect], 15)!;
    expect(fair.accuracy).toBeCloseTo(0.6, 12);
    expect(uncapped.accuracy).toBeGreaterThan(0.99);
    // 15 of 35 weight at accuracy 1: 0.6 + 15/35 × 0.4.
    expect(capped.accuracy).toBeCloseTo((20 * 0.6 + 15) / 35, 12);
    expect(capped.accuracy - fair.accuracy).toBeLessThanOrEqual((15 / 35) * (1 - fair.accuracy) + 1e-12);
    expect(capped.weightCap).toBe(15);
    expect(capped.numExamples).toBe(1020);
    // The median stays an honest site's value.
    expect(capped.median.accuracy).toBeCloseTo(0.6, 12);
  });
});

describe('EvaluationRound', () => {
  it('asks every online agent once, with the version and the hold-out share, and aggregates', async () => {
    const pool = new EvaluatingPool(
      new Map([
        ['a', answers(report(10, 8))],
        ['b', answers(report(5, 5), 10)],
      ]),
    );
    const result = await runEvaluationRound(pool, plan({ minClients: 2 }), new AbortController().signal, log);
    expect(result.state).toBe('completed');
    expect(result.results.map((r) => r.agentId).sort()).toEqual(['a', 'b']);
    expect(result.aggregate).toMatchObject({ numExamples: 15, accuracy: 13 / 15 });
    expect(pool.sent).toHaveLength(2);
    const task = pool.sent[0].task;
    expect(task).toMatchObject({ evaluationId: 'eval-1', holdoutFraction: 0.1, model: { version: 3 } });
    expect(Array.from(decodeTensorBytes(task.weights)[0].data)).toEqual([1, 2]);
  });

  it("records a lying agent's report as its failure, with the reason, and completes with the others", async () => {
    const pool = new EvaluatingPool(
      new Map([
        ['honest', answers(report(10, 8))],
        [
          'liar',
          answers({
            ...report(10, 8),
            confusion: [
              [10, 0],
              [0, 0],
            ],
          }),
        ],
        ['boaster', answers(report(5_000, 5_000))],
      ]),
    );
    const result = await runEvaluationRound(pool, plan(), new AbortController().signal, log);
    expect(result.state).toBe('completed');
    expect(result.results.map((r) => r.agentId)).toEqual(['honest']);
    expect(result.aggregate?.numExamples).toBe(10);
    const failures = Object.fromEntries(result.failures.map((f) => [f.agentId, f]));
    expect(failures.liar).toMatchObject({ code: 'LOOM_ERR_UPDATE_REJECTED' });
    expect(failures.liar.reason).toMatch(/accuracy|confusion/);
    expect(failures.boaster.reason).toContain('declared 100 examples');
  });

  it('fails without quorum, naming how many reports it got', async () => {
    const pool = new EvaluatingPool(
      new Map([
        ['a', answers(report(10, 8))],
        ['b', () => Promise.reject(new LoomError('LOOM_ERR_TASK_FAILED', 'agent reported LOOM_ERR_DATA'))],
      ]),
    );
    const result = await runEvaluationRound(
      pool,
      plan({ minClients: 2, timeoutMs: 100 }),
      new AbortController().signal,
      log,
    );
    expect(result.state).toBe('failed');
    expect(result.error?.code).toBe('LOOM_ERR_ROUND_QUORUM');
    expect(result.error?.message).toContain('1 of the 2');
    expect(result.aggregate?.numExamples).toBe(10);
  });

  it('ends at its deadline, cancelling tasks still out and counting them as failures', async () => {
    const pool = new EvaluatingPool(
      new Map([
        ['a', answers(report(10, 8))],
        ['slow', never],
      ]),
    );
    const result = await runEvaluationRound(
      pool,
      plan({ agents: ['a', 'slow'], timeoutMs: 200 }),
      new AbortController().signal,
      log,
    );
    expect(result.state).toBe('completed');
    expect(result.failures).toEqual([
      { agentId: 'slow', code: 'LOOM_ERR_TASK_FAILED', reason: 'no result within 0 s' },
    ]);
    expect(pool.cancelled).toHaveLength(1);
  });

  it('asks a named agent when it connects, and only the agents named', async () => {
    const pool = new EvaluatingPool(new Map([['other', answers(report(10, 1))]]));
    const running = runEvaluationRound(
      pool,
      plan({ agents: ['late'], timeoutMs: 5_000 }),
      new AbortController().signal,
      log,
    );
    setTimeout(() => pool.connect('late', answers(report(10, 10))), 20);
    const result = await running;
    expect(result.state).toBe('completed');
    expect(result.asked).toEqual(['late']);
    expect(pool.sent.map((s) => s.agentId)).toEqual(['late']);
  });

  it('counts a named agent that never connects as a failure at the deadline', async () => {
    const pool = new EvaluatingPool(new Map([['a', answers(report(10, 8))]]));
    const result = await runEvaluationRound(
      pool,
      plan({ agents: ['a', 'absent'], minClients: 2, timeoutMs: 150 }),
      new AbortController().signal,
      log,
    );
    expect(result.state).toBe('failed');
    expect(result.failures).toEqual([
      expect.objectContaining({ agentId: 'absent', code: 'LOOM_ERR_AGENT_DISCONNECTED' }),
    ]);
  });

  it('is cancelled by its signal', async () => {
    const pool = new EvaluatingPool(new Map([['a', never]]));
    const controller = new AbortController();
    const running = runEvaluationRound(pool, plan(), controller.signal, log);
    controller.abort();
    const result = await running;
    expect(result.state).toBe('cancelled');
    expect(pool.cancelled).toHaveLength(1);
  });
});

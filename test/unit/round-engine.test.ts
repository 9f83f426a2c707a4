// The round engine against an in-memory AgentPool: quorum, deadline, drop-outs, bad updates.
import { describe, expect, it } from 'vitest';
import { createAggregationEngine } from '../../coordinator/aggregation/index.ts';
import {
  type AgentPool,
  type EvaluateOutcome,
  runRound,
  type TrainOutcome,
  type TrainTask,
} from '../../coordinator/rounds/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { type DatasetSummary, decodeTensorBytes } from '../../shared/protocol/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';
import { datasetSummary } from '../helpers/dataset.ts';

type Behaviour = (task: TrainTask) => Promise<TrainOutcome>;

/** An AgentPool whose agents answer by script; the round engine cannot tell it from the gateway. */
class ScriptedPool implements AgentPool {
  readonly sent: { agentId: string; task: TrainTask }[] = [];
  readonly cancelled: string[] = [];
  /** Dataset sizes the agents declared when they connected (none declared by default). */
  readonly declared = new Map<string, number>();
  private listeners = new Set<(id: string) => void>();
  constructor(public online: Map<string, Behaviour>) {}
  onlineAgentIds(): string[] {
    return [...this.online.keys()];
  }
  datasetOf(agentId: string): DatasetSummary | undefined {
    const examples = this.declared.get(agentId);
    return examples === undefined ? undefined : datasetSummary(examples);
  }
  runTrainTask(agentId: string, task: TrainTask): Promise<TrainOutcome> {
    this.sent.push({ agentId, task });
    const b = this.online.get(agentId);
    if (!b) return Promise.reject(new LoomError('LOOM_ERR_AGENT_DISCONNECTED', 'gone'));
    return b(task);
  }
  runEvaluateTask(): Promise<EvaluateOutcome> {
    return Promise.reject(new LoomError('LOOM_ERR_TASK_FAILED', 'these agents only train'));
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

const GLOBAL: WeightTensor[] = [{ name: 'w', shape: [2], dtype: 'float32', data: new Float32Array([1, 1]) }];

function answer(delta: number[], numExamples: number, delayMs = 0): Behaviour {
  return (task) =>
    new Promise((resolve) =>
      setTimeout(() => {
        // The agent sees the global weights it was sent.
        expect(Array.from(decodeTensorBytes(task.weights)[0].data)).toEqual([1, 1]);
        resolve({
          numExamples,
          metrics: { loss: numExamples / 100, accuracy: 0.5 },
          update: [{ name: 'w', shape: [2], dtype: 'float32', data: new Float32Array(delta) }],
          trainMs: delayMs,
        });
      }, delayMs),
    );
}

const never: Behaviour = () => new Promise(() => {});
const disconnects: Behaviour = () =>
  Promise.reject(new LoomError('LOOM_ERR_AGENT_DISCONNECTED', 'socket closed'));

function plan(overrides: Partial<Parameters<typeof runRound>[1]> = {}): Parameters<typeof runRound>[1] {
  return {
    jobId: 'job-1',
    round: 1,
    model: { name: 'm', version: 1, architecture: { kind: 'logistic', inputShape: [1], classes: 2 } },
    hyper: { epochs: 1, batchSize: 8, learningRate: 0.1 },
    global: GLOBAL,
    targetClients: 2,
    minClients: 2,
    timeoutMs: 2_000,
    engine: createAggregationEngine('typed-array'),
    ...overrides,
  };
}

const log = createLogger('silent');
const signal = () => new AbortController().signal;

describe('round engine', () => {
  it('finalises with the example-weighted average of the updates once the target is reached', async () => {
    const pool = new ScriptedPool(
      new Map([
        ['a', answer([1, 0], 100)],
        ['b', answer([0, 1], 300)],
      ]),
    );
    const out = await runRound(pool, plan(), signal(), log);
    expect(out.state).toBe('completed');
    expect(Array.from(out.weights![0].data)).toEqual([1.25, 1.75]);
    expect(out.participants.map((p) => p.agentId).sort()).toEqual(['a', 'b']);
    expect(out.numExamples).toBe(400);
    // The round's metrics are medians of what the agents reported, which no one agent sets.
    expect(out.trainMetrics.loss).toBeCloseTo((1 + 3) / 2);
  });

  it('does not stall when an agent drops mid-round while quorum is still reachable', async () => {
    const pool = new ScriptedPool(
      new Map<string, Behaviour>([
        ['a', answer([1, 1], 10, 20)],
        ['b', answer([1, 1], 10, 20)],
      ]),
    );
    // Agent c takes its task, then its connection drops: it leaves the pool and the task fails.
    pool.online.set('c', () => {
      pool.online.delete('c');
      return new Promise((_, reject) =>
        setTimeout(() => reject(new LoomError('LOOM_ERR_AGENT_DISCONNECTED', 'closed')), 5),
      );
    });
    const out = await runRound(
      pool,
      plan({ targetClients: 3, minClients: 2, timeoutMs: 10_000 }),
      signal(),
      log,
    );
    expect(out.participants).toHaveLength(2);
    expect(out.failures).toEqual([
      expect.objectContaining({ agentId: 'c', code: 'LOOM_ERR_AGENT_DISCONNECTED' }),
    ]);
  });

  it('sends the task to a replacement agent when one drops', async () => {
    const pool = new ScriptedPool(
      new Map<string, Behaviour>([
        ['a', answer([1, 1], 10)],
        ['b', disconnects],
      ]),
    );
    // Clipping off: with two agents it would clip 'late' to the smaller norm.
    const round = runRound(
      pool,
      plan({ targetClients: 2, minClients: 2, timeoutMs: 5_000, robustness: { clipFactor: 0 } }),
      signal(),
      log,
    );
    setTimeout(() => pool.connect('late', answer([3, 3], 10)), 50);
    const out = await round;
    expect(out.participants.map((p) => p.agentId).sort()).toEqual(['a', 'late']);
    expect(Array.from(out.weights![0].data)).toEqual([3, 3]);
  });

  it('finalises at the deadline with the updates received when quorum is met', async () => {
    const pool = new ScriptedPool(
      new Map<string, Behaviour>([
        ['a', answer([2, 2], 10)],
        ['slow', never],
      ]),
    );
    const out = await runRound(
      pool,
      plan({ targetClients: 2, minClients: 1, timeoutMs: 300 }),
      signal(),
      log,
    );
    expect(out.participants.map((p) => p.agentId)).toEqual(['a']);
    expect(Array.from(out.weights![0].data)).toEqual([3, 3]);
    expect(pool.cancelled).toHaveLength(1);
  });

  it('fails with LOOM_ERR_ROUND_QUORUM at the deadline without quorum instead of hanging', async () => {
    const pool = new ScriptedPool(
      new Map<string, Behaviour>([
        ['a', answer([1, 1], 10)],
        ['slow', never],
      ]),
    );
    const out = await runRound(
      pool,
      plan({ targetClients: 3, minClients: 3, timeoutMs: 300 }),
      signal(),
      log,
    );
    expect(out.state).toBe('failed');
    expect(out.error?.code).toBe('LOOM_ERR_ROUND_QUORUM');
    expect(out.error?.message).toMatch(/got 1 of the 3 updates/);
    expect(out.weights).toBeUndefined();
    // What the round got is kept: who was asked and who answered.
    expect(out.sampled.sort()).toEqual(['a', 'slow']);
    expect(out.participants.map((p) => p.agentId)).toEqual(['a']);
  });

  it('waits for agents to come online within the deadline', async () => {
    const pool = new ScriptedPool(new Map());
    const round = runRound(pool, plan({ targetClients: 1, minClients: 1, timeoutMs: 3_000 }), signal(), log);
    setTimeout(() => pool.connect('a', answer([1, 1], 5)), 100);
    const out = await round;
    expect(out.participants).toHaveLength(1);
  });

  it('records a NaN or wrongly shaped update as a failure and keeps it out of the average', async () => {
    const nan: Behaviour = async () => ({
      numExamples: 50,
      metrics: {},
      update: [{ name: 'w', shape: [2], dtype: 'float32', data: new Float32Array([Number.NaN, 0]) }],
      trainMs: 1,
    });
    const wrongShape: Behaviour = async () => ({
      numExamples: 50,
      metrics: {},
      update: [{ name: 'w', shape: [3], dtype: 'float32', data: new Float32Array(3) }],
      trainMs: 1,
    });
    const pool = new ScriptedPool(
      new Map<string, Behaviour>([
        ['good', answer([4, 4], 10)],
        ['nan', nan],
        ['shape', wrongShape],
      ]),
    );
    const out = await runRound(
      pool,
      plan({ targetClients: 3, minClients: 1, timeoutMs: 2_000 }),
      signal(),
      log,
    );
    expect(Array.from(out.weights![0].data)).toEqual([5, 5]);
    expect(out.failures.map((f) => [f.agentId, f.code]).sort()).toEqual([
      ['nan', 'LOOM_ERR_UPDATE_REJECTED'],
      ['shape', 'LOOM_ERR_UPDATE_REJECTED'],
    ]);
  });

  it('stops with LOOM_ERR_JOB_CANCELLED when the job is cancelled', async () => {
    const pool = new ScriptedPool(new Map<string, Behaviour>([['slow', never]]));
    const controller = new AbortController();
    const round = runRound(
      pool,
      plan({ targetClients: 1, minClients: 1, timeoutMs: 10_000 }),
      controller.signal,
      log,
    );
    setTimeout(() => controller.abort(), 50);
    const out = await round;
    expect(out.state).toBe('cancelled');
    expect(out.error?.code).toBe('LOOM_ERR_JOB_CANCELLED');
    expect(pool.cancelled).toHaveLength(1);
  });
});

describe('round engine against hostile updates', () => {
  const honest = (delta: number[]): Behaviour => answer(delta, 100);

  it('rejects an update whose weighted values would overflow as that agent failure, and goes on with the others', async () => {
    const pool = new ScriptedPool(
      new Map([
        ['a', answer([3e38, 0], 1)],
        ['b', answer([3e38, 0], 1)],
        ['c', honest([1, 1])],
        ['d', honest([1, 1])],
      ]),
    );
    // Clipping off: only the overflow check stands between the two huge updates and the sum.
    const out = await runRound(
      pool,
      plan({ targetClients: 4, minClients: 3, robustness: { clipFactor: 0, weightCapRatio: 0 } }),
      signal(),
      log,
    );
    expect(out.state).toBe('completed');
    expect(out.failures).toHaveLength(1);
    expect(out.failures[0]).toMatchObject({
      code: 'LOOM_ERR_UPDATE_REJECTED',
      reason: expect.stringMatching(/overflow/),
    });
    expect(['a', 'b']).toContain(out.failures[0].agentId);
    expect(out.weights![0].data.every(Number.isFinite)).toBe(true);
  });

  it('clips an update near the float32 limit to the median norm of the first updates', async () => {
    const pool = new ScriptedPool(
      new Map([
        ['huge', answer([3e38, 3e38], 100)],
        ['b', honest([1, 1])],
        ['c', honest([1, 1])],
      ]),
    );
    const out = await runRound(pool, plan({ targetClients: 3, minClients: 3 }), signal(), log);
    expect(out.error).toBeUndefined();
    expect(out.state).toBe('completed');
    expect(out.clipNorm).toBeCloseTo(1.5 * Math.SQRT2, 5);
    const huge = out.participants.find((p) => p.agentId === 'huge')!;
    expect(huge.scale).toBeLessThan(1e-37);
    // Each agent's update counts with norm at most 1.5·√2: the mean moves by about 1.17 per weight.
    for (const v of out.weights![0].data) expect(v).toBeCloseTo(1 + (1 + 1 + 1.5) / 3, 3);
  });

  it('rejects a count larger than the agent declared when it connected', async () => {
    const pool = new ScriptedPool(
      new Map([
        ['liar', answer([9, 9], 1_000_000_000)],
        ['b', honest([1, 1])],
        ['c', honest([1, 1])],
      ]),
    );
    for (const id of ['liar', 'b', 'c']) pool.declared.set(id, 100);
    const out = await runRound(pool, plan({ targetClients: 3, minClients: 2 }), signal(), log);
    expect(out.failures).toEqual([
      expect.objectContaining({
        agentId: 'liar',
        code: 'LOOM_ERR_UPDATE_REJECTED',
        reason: expect.stringMatching(/declared 100/),
      }),
    ]);
    expect(Array.from(out.weights![0].data)).toEqual([2, 2]);
  });

  it('caps a consistently lying count at 1.5× the median declared size', async () => {
    const pool = new ScriptedPool(
      new Map([
        ['liar', answer([1, 1], 1_000_000_000)],
        ['b', honest([0, 0])],
        ['c', honest([0, 0])],
        ['d', honest([0, 0])],
      ]),
    );
    pool.declared.set('liar', 1_000_000_000);
    for (const id of ['b', 'c', 'd']) pool.declared.set(id, 100);
    // Clipping off: this is about the weight alone.
    const out = await runRound(
      pool,
      plan({ targetClients: 4, minClients: 4, robustness: { clipFactor: 0 } }),
      signal(),
      log,
    );
    expect(out.weightCap).toBe(150);
    const liar = out.participants.find((p) => p.agentId === 'liar')!;
    expect(liar).toMatchObject({ numExamples: 1_000_000_000, weight: 150 });
    // Its share of the round: 150 / (150 + 300).
    for (const v of out.weights![0].data) expect(v).toBeCloseTo(1 + 150 / 450, 6);
  });

  it('keeps the round metrics within the honest agents reports whatever one agent reports', async () => {
    const reports =
      (loss: number, accuracy: number): Behaviour =>
      async () => ({
        numExamples: 100,
        metrics: { loss, accuracy },
        update: [{ name: 'w', shape: [2], dtype: 'float32', data: new Float32Array([0, 0]) }],
        trainMs: 1,
      });
    const pool = new ScriptedPool(
      new Map([
        ['liar', reports(0.0001, 0.99)],
        ['b', reports(0.8, 0.7)],
        ['c', reports(0.9, 0.72)],
        ['d', reports(0.85, 0.74)],
      ]),
    );
    const out = await runRound(pool, plan({ targetClients: 4, minClients: 4 }), signal(), log);
    expect(out.trainMetrics.accuracy).toBeGreaterThanOrEqual(0.7);
    expect(out.trainMetrics.accuracy).toBeLessThanOrEqual(0.74);
    expect(out.trainMetrics.loss).toBeGreaterThanOrEqual(0.8);
  });
});

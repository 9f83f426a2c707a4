// The job service with real LevelDB stores and a scripted AgentPool: rounds saved with their
// versions in one batch, resume after a stop, per-agent outcomes of failed rounds, agents that
// decline a job for good, and one running job per model.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createLevelJobStore,
  JOB_DEFAULTS,
  type JobConfig,
  type JobEvent,
  JobService,
  type JobStore,
} from '../../coordinator/jobs/index.ts';
import { createLevelRegistry, type ModelRegistry } from '../../coordinator/registry/index.ts';
import type { AgentPool, EvaluateOutcome, TrainOutcome, TrainTask } from '../../coordinator/rounds/index.ts';
import { type CoordinatorDb, openCoordinatorDb } from '../../coordinator/store/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { randomDataKey } from '../../shared/crypto/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { initialWeights, type ModelArchitecture } from '../../shared/models/index.ts';
import { type DatasetSummary, decodeTensorBytes } from '../../shared/protocol/index.ts';
import { waitUntil } from '../helpers/cluster.ts';
import { datasetSummary } from '../helpers/dataset.ts';

type Answer = (agentId: string, task: TrainTask) => Promise<TrainOutcome>;

/** Agents that answer with a +1 delta on every weight unless told otherwise. */
class ScriptedPool implements AgentPool {
  rounds: number[] = [];
  agents = ['a', 'b'];
  answer: Answer = async (_agentId, task) => ({
    numExamples: 10,
    metrics: { loss: 1 },
    update: decodeTensorBytes(task.weights).map((w) => ({
      ...w,
      data: new Float32Array(w.data.length).fill(1),
    })),
    trainMs: 1,
  });
  onlineAgentIds(): string[] {
    return this.agents;
  }
  datasetOf(): DatasetSummary {
    return datasetSummary(10);
  }
  runTrainTask(agentId: string, task: TrainTask): Promise<TrainOutcome> {
    this.rounds.push(task.round);
    return this.answer(agentId, task);
  }
  /** Every agent holds out 1 of its 10 examples, and gets it right. */
  runEvaluateTask(): Promise<EvaluateOutcome> {
    return Promise.resolve({
      numExamples: 1,
      loss: 0.5,
      accuracy: 1,
      confusion: [
        [1, 0],
        [0, 0],
      ],
      evalMs: 1,
    });
  }
  cancelTask(): void {}
  onAgentOnline(): () => void {
    return () => {};
  }
}

const ARCH: ModelArchitecture = { kind: 'logistic', inputShape: [2], classes: 2 };
const log = createLogger('silent');

function config(overrides: Partial<JobConfig> = {}): JobConfig {
  return {
    ...JOB_DEFAULTS,
    model: 'm',
    rounds: 2,
    minClients: 2,
    clientsPerRound: 2,
    roundTimeoutSec: 10,
    epochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    ...overrides,
  };
}

describe('job service', () => {
  let dir: string;
  let db: CoordinatorDb;
  let registry: ModelRegistry;
  let store: JobStore;
  let pool: ScriptedPool;
  let service: JobService;

  beforeEach(async () => {
    await initCompute();
    dir = await mkdtemp(join(tmpdir(), 'loom-jobs-'));
    db = await openCoordinatorDb(dir);
    registry = createLevelRegistry(db, { dataKey: randomDataKey() });
    const init = await initialWeights(ARCH);
    await registry.createModel({ name: 'm', architecture: ARCH, ...init });
    store = createLevelJobStore(db);
    pool = new ScriptedPool();
    service = new JobService({ store, registry, pool, log });
  });

  afterEach(async () => {
    await service.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes each round with its version and resumes after the last saved round when restarted', async () => {
    // Round 2's tasks are held until the service stops, so the stop lands inside round 2.
    let releaseRound2!: () => void;
    const round2 = new Promise<void>((resolve) => {
      releaseRound2 = resolve;
    });
    const answer = pool.answer;
    pool.answer = async (agentId, task) => {
      if (task.round === 2) await round2;
      return answer(agentId, task);
    };
    const job = await service.create(config({ rounds: 3 }), 'test');
    await waitUntil(() => pool.rounds.includes(2), 10_000, 'round 2 to start');
    await service.close();
    releaseRound2();
    const stopped = await store.get(job.id);
    expect(stopped.state).toBe('running');
    const saved = await store.rounds(job.id);
    for (const r of saved) expect((await registry.getVersion('m', r.version!)).jobId).toBe(job.id);

    const again = new JobService({ store, registry, pool, log });
    expect(await again.resumeUnfinished()).toEqual([job.id]);
    const done = await again.waitFor(job.id);
    expect(done.state).toBe('completed');
    const view = await again.get(job.id);
    expect(view.rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    expect(view.rounds.map((r) => r.version)).toEqual([2, 3, 4]);
    // Versions chain: each round's version has the previous one as its parent.
    expect((await registry.getVersion('m', 4)).parentVersion).toBe(3);
    const base = await registry.getWeights('m', 1);
    const last = await registry.getWeights('m', 4);
    expect(Array.from(last[1].data)).toEqual(Array.from(base[1].data, (x) => x + 3));
  });

  it('keeps the per-agent outcomes of the round that failed the job', async () => {
    pool.answer = async (agentId, task) => {
      if (agentId === 'b')
        throw new LoomError('LOOM_ERR_TASK_FAILED', 'agent reported LOOM_ERR_INTERNAL: disk full');
      return new ScriptedPool().answer(agentId, task);
    };
    const job = await service.create(config({ rounds: 1, roundTimeoutSec: 0.3 }), 'test');
    const done = await service.waitFor(job.id);
    expect(done.state).toBe('failed');
    expect(done.error?.code).toBe('LOOM_ERR_ROUND_QUORUM');
    const view = await service.get(job.id);
    expect(view.rounds).toHaveLength(1);
    expect(view.rounds[0]).toMatchObject({
      round: 1,
      state: 'failed',
      error: { code: 'LOOM_ERR_ROUND_QUORUM' },
    });
    expect(view.rounds[0].participants.map((p) => p.agentId)).toEqual(['a']);
    expect(view.rounds[0].failures).toEqual([
      expect.objectContaining({
        agentId: 'b',
        code: 'LOOM_ERR_TASK_FAILED',
        reason: expect.stringMatching(/disk full/),
      }),
    ]);
  });

  it('stops sampling an agent that declined the job for good', async () => {
    pool.agents = ['a', 'b', 'c'];
    pool.answer = async (agentId, task) => {
      if (agentId === 'c') {
        throw new LoomError(
          'LOOM_ERR_TASK_FAILED',
          'agent reported LOOM_ERR_DATA: 783 features, the model takes 784',
          {
            details: { permanent: true },
          },
        );
      }
      return new ScriptedPool().answer(agentId, task);
    };
    const events: JobEvent[] = [];
    service.on('event', (e) => events.push(e));
    const job = await service.create(
      config({ rounds: 3, clientsPerRound: undefined, minClients: 2 }),
      'test',
    );
    const done = await service.waitFor(job.id);
    expect(done.state).toBe('completed');
    expect(done.excludedAgents).toEqual({
      c: { code: 'LOOM_ERR_TASK_FAILED', reason: expect.stringMatching(/783 features/), round: 1 },
    });
    const asked = events.filter((e) => e.type === 'task-sent' && e.agentId === 'c');
    expect(asked).toHaveLength(1);
    expect(events.some((e) => e.type === 'agent-excluded' && e.agentId === 'c')).toBe(true);
  });

  it('refuses a second running job on a model unless allowConcurrent, and keeps their versions apart', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const answer = pool.answer;
    pool.answer = async (agentId, task) => {
      await gate;
      return answer(agentId, task);
    };
    const first = await service.create(config({ rounds: 2 }), 'test');
    await expect(service.create(config(), 'test')).rejects.toMatchObject({
      code: 'LOOM_ERR_CONFLICT',
      message: expect.stringContaining(first.id),
    });
    const second = await service.create(config({ rounds: 2, allowConcurrent: true }), 'test');
    release();
    await service.waitFor(first.id);
    await service.waitFor(second.id);
    for (const job of [first, second]) {
      const versions = (await registry.listVersions('m')).filter((v) => v.jobId === job.id);
      expect(versions).toHaveLength(2);
      // Each job's second version descends from its own first one, never from the other job's.
      expect(versions[1].parentVersion).toBe(versions[0].version);
      expect(versions[0].parentVersion).toBe(1);
    }
  });
});

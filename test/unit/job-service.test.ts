// The job service with real LevelDB stores: resuming after a stop between the two writes of a round.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLevelJobStore, type JobRecord, JobService } from '../../coordinator/jobs/index.ts';
import { createLevelRegistry, type ModelRegistry } from '../../coordinator/registry/index.ts';
import type { AgentPool, TrainOutcome, TrainTask } from '../../coordinator/rounds/index.ts';
import { type CoordinatorDb, openCoordinatorDb } from '../../coordinator/store/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { initialWeights, type ModelArchitecture } from '../../shared/models/index.ts';
import { decodeTensorBytes } from '../../shared/protocol/index.ts';

/** Agents that always answer with a +1 delta on every weight. */
class PlusOnePool implements AgentPool {
  rounds: number[] = [];
  onlineAgentIds(): string[] {
    return ['a', 'b'];
  }
  async runTrainTask(_agentId: string, task: TrainTask): Promise<TrainOutcome> {
    this.rounds.push(task.round);
    const update = decodeTensorBytes(task.weights).map((w) => ({
      ...w,
      data: new Float32Array(w.data.length).fill(1),
    }));
    return { numExamples: 10, metrics: { loss: 1 }, update, trainMs: 1 };
  }
  cancelTask(): void {}
  onAgentOnline(): () => void {
    return () => {};
  }
}

const ARCH: ModelArchitecture = { kind: 'logistic', inputShape: [2], classes: 2 };
const log = createLogger('silent');

describe('job service', () => {
  let dir: string;
  let db: CoordinatorDb;
  let registry: ModelRegistry;

  beforeEach(async () => {
    await initCompute();
    dir = await mkdtemp(join(tmpdir(), 'loom-jobs-'));
    db = await openCoordinatorDb(dir);
    registry = createLevelRegistry(db);
    const init = await initialWeights(ARCH);
    await registry.createModel({ name: 'm', architecture: ARCH, ...init });
  });

  afterEach(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('adopts a round version written just before a stop instead of training the round again', async () => {
    const store = createLevelJobStore(db);
    const job: JobRecord = {
      id: 'job-1',
      config: {
        model: 'm',
        rounds: 2,
        minClients: 2,
        clientsPerRound: 2,
        roundTimeoutSec: 10,
        epochs: 1,
        batchSize: 8,
        learningRate: 0.1,
        versionEvery: 1,
        serverLearningRate: 1,
      },
      state: 'running',
      createdAt: new Date().toISOString(),
      createdBy: 'test',
      currentRound: 1,
      baseVersion: 1,
      rounds: [],
    };
    await store.put(job);
    // Round 1's version reached the registry; the job record naming it did not.
    const v1 = await registry.getWeights('m', 1);
    await registry.addVersion({
      model: 'm',
      parentVersion: 1,
      jobId: 'job-1',
      round: 1,
      agents: ['a', 'b'],
      exampleCounts: { a: 10, b: 10 },
      metrics: { loss: 1 },
      weights: v1.map((w) => ({ ...w, data: w.data.map((x) => x + 1) })),
    });

    const pool = new PlusOnePool();
    const service = new JobService({ store, registry, pool, log });
    expect(await service.resumeUnfinished()).toEqual(['job-1']);
    const done = await service.waitFor('job-1');
    expect(done.state).toBe('completed');
    expect(pool.rounds).toEqual([2, 2]);
    expect(done.rounds.map((r) => [r.round, r.version])).toEqual([
      [1, 2],
      [2, 3],
    ]);
    expect((await registry.getVersion('m', 3)).parentVersion).toBe(2);
    const v3 = await registry.getWeights('m', 3);
    expect(Array.from(v3[1].data)).toEqual(Array.from(v1[1].data, (x) => x + 2));
  });
});

// The store check over the lifecycle records, on a real LevelDB in a temp folder: damaged records
// (unparseable, dangling, contradictory) written behind the services' backs are each reported with
// their key and a stable kind, and the check never throws.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLevelAuditLog } from '../../coordinator/audit/index.ts';
import { createLevelAgentDirectory, createLevelTokenStore } from '../../coordinator/directory/index.ts';
import { checkStore, formatStoreReport, LIFECYCLE_PROBLEM_KINDS } from '../../coordinator/integrity/index.ts';
import { createLevelJobStore } from '../../coordinator/jobs/index.ts';
import { createLevelRegistry, type ModelRegistry } from '../../coordinator/registry/index.ts';
import {
  type CoordinatorDb,
  jsonSublevel,
  numericKey,
  openCoordinatorDb,
  SUBLEVEL,
  type SublevelName,
} from '../../coordinator/store/index.ts';
import { randomDataKey } from '../../shared/crypto/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';

const dataKey = randomDataKey();
const K = LIFECYCLE_PROBLEM_KINDS;

function weights(seed: number): WeightTensor[] {
  return [
    {
      name: 'dense/kernel',
      shape: [3, 2],
      dtype: 'float32',
      data: Float32Array.from({ length: 6 }, () => seed),
    },
    { name: 'dense/bias', shape: [2], dtype: 'float32', data: new Float32Array([seed, seed]) },
  ];
}

describe('store check of the lifecycle records', () => {
  let dir: string;
  let db: CoordinatorDb;
  let registry: ModelRegistry;

  const check = () =>
    checkStore({
      db,
      registry,
      jobs: createLevelJobStore(db),
      agents: createLevelAgentDirectory(db),
      tokens: createLevelTokenStore(db),
      audit: createLevelAuditLog(db),
      dataKey,
    });

  const put = (name: SublevelName, key: string, value: unknown): Promise<unknown> =>
    db.commit([{ type: 'put', sublevel: jsonSublevel(db.root, name), key, value }]);
  /** Writes raw text as a record's value, as a torn or foreign write would leave it. */
  const putRaw = (name: SublevelName, key: string, text: string): Promise<void> =>
    db.root.sublevel<string, string>(name, { valueEncoding: 'utf8' }).put(key, text);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-store-check-'));
    db = await openCoordinatorDb(dir);
    registry = createLevelRegistry(db, { dataKey });
    await registry.createModel({
      name: 'digits',
      architecture: { kind: 'logistic', inputShape: [3], classes: 2 },
      inputShape: [3],
      classes: 2,
      weights: weights(1),
    });
    await registry.addVersion({
      model: 'digits',
      parentVersion: 1,
      jobId: null,
      round: null,
      agents: [],
      exampleCounts: {},
      metrics: {},
      weights: weights(2),
    });
    const now = new Date().toISOString();
    // A consistent lifecycle: v2 in production, v1 archived and retired in its favour.
    await put(SUBLEVEL.versionStages, `digits/${numericKey(2)}`, { stage: 'production', tags: {} });
    await put(SUBLEVEL.versionStages, `digits/${numericKey(1)}`, { stage: 'retired', tags: {} });
    await put(SUBLEVEL.aliases, 'digits/champion', {
      alias: 'champion',
      version: 2,
      updatedAt: now,
      updatedBy: 'a',
    });
    await put(SUBLEVEL.promotionPolicies, 'digits', { metric: 'accuracy', min: 0.5 });
    await put(SUBLEVEL.evaluations, 'digits/eval-1', {
      id: 'eval-1',
      model: 'digits',
      version: 2,
      state: 'completed',
    });
    await put(SUBLEVEL.deployments, 'digits', { model: 'digits', version: 2, deployedAt: now });
    await put(SUBLEVEL.agentTargets, 'digits/agent-1', {
      agentId: 'agent-1',
      model: 'digits',
      version: 2,
      setAt: now,
    });
    await put(SUBLEVEL.rollouts, 'rollout-1', {
      id: 'rollout-1',
      model: 'digits',
      version: 2,
      state: 'completed',
    });
    await put(SUBLEVEL.retirements, `digits/${numericKey(1)}`, { model: 'digits', version: 1, successor: 2 });
  });

  afterEach(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds nothing wrong with consistent records, and counts them', async () => {
    const report = await check();
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.counts.lifecycleRecords).toBe(9);
    expect(formatStoreReport(report)).toMatch(/9 lifecycle record\(s\)$/);
  });

  it('reports every dangling reference with its record key and a stable kind', async () => {
    await put(SUBLEVEL.evaluations, 'digits/eval-2', { id: 'eval-2', model: 'digits', version: 9 });
    await put(SUBLEVEL.evaluations, 'gone/eval-3', { id: 'eval-3', model: 'gone', version: 1 });
    await put(SUBLEVEL.versionStages, `digits/${numericKey(7)}`, { stage: 'staging', tags: {} });
    await put(SUBLEVEL.aliases, 'digits/challenger', { alias: 'challenger', version: 5 });
    await put(SUBLEVEL.promotionPolicies, 'gone', { metric: 'loss' });
    await put(SUBLEVEL.agentTargets, 'digits/agent-2', { agentId: 'agent-2', model: 'digits', version: 3 });
    await put(SUBLEVEL.rollouts, 'rollout-2', {
      id: 'rollout-2',
      model: 'digits',
      version: 8,
      state: 'running',
    });
    await put(SUBLEVEL.retirements, `digits/${numericKey(2)}`, { model: 'digits', version: 2, successor: 4 });
    const report = await check();
    expect(report.ok).toBe(false);
    const found = report.problems.map((p) => [p.kind, p.record?.sublevel, p.record?.key]);
    expect(found).toEqual(
      expect.arrayContaining([
        [K.evaluationVersion, 'evaluations', 'digits/eval-2'],
        [K.evaluationVersion, 'evaluations', 'gone/eval-3'],
        [K.stageVersion, 'version-stages', `digits/${numericKey(7)}`],
        [K.aliasVersion, 'aliases', 'digits/challenger'],
        [K.policyModel, 'promotion-policies', 'gone'],
        [K.deploymentVersion, 'deployment-agents', 'digits/agent-2'],
        [K.rolloutVersion, 'rollouts', 'rollout-2'],
        [K.retirementSuccessor, 'retirements', `digits/${numericKey(2)}`],
      ]),
    );
    expect(found).toHaveLength(8);
    const byKey = new Map(report.problems.map((p) => [p.record?.key, p.message]));
    expect(byKey.get('digits/eval-2')).toBe(
      'evaluations digits/eval-2: the evaluation names digits version 9, which does not exist',
    );
    expect(byKey.get('gone/eval-3')).toMatch(/names model gone, which does not exist/);
    expect(byKey.get(`digits/${numericKey(2)}`)).toMatch(
      /its successor names digits version 4, which does not exist/,
    );
  });

  it('reports two production versions of one model, and stages and rollout states it does not know', async () => {
    await put(SUBLEVEL.versionStages, `digits/${numericKey(1)}`, { stage: 'production', tags: {} });
    await put(SUBLEVEL.versionStages, `digits/${numericKey(2)}`, { stage: 'champion', tags: {} });
    await put(SUBLEVEL.rollouts, 'rollout-1', {
      id: 'rollout-1',
      model: 'digits',
      version: 2,
      state: 'exploded',
    });
    let report = await check();
    expect(report.problems.map((p) => p.kind).sort()).toEqual([K.rolloutState, K.stageUnknown].sort());
    expect(report.problems.find((p) => p.kind === K.rolloutState)?.message).toMatch(
      /state "exploded" is not one of/,
    );
    await put(SUBLEVEL.versionStages, `digits/${numericKey(2)}`, { stage: 'production', tags: {} });
    report = await check();
    const two = report.problems.find((p) => p.kind === K.stageProduction);
    expect(two?.message).toBe(
      'version-stages digits: 2 versions are in production (1, 2); a model has at most one',
    );
  });

  it('reports a record that is not JSON, or not an object, by its key, and still checks the others', async () => {
    await putRaw(SUBLEVEL.rollouts, 'rollout-torn', '{"id":"rollout-torn","mod');
    await putRaw(SUBLEVEL.aliases, 'digits/odd', '[1,2]');
    await putRaw(SUBLEVEL.evaluations, 'digits/eval-null', 'null');
    await put(SUBLEVEL.retirements, 'gone/000000000001', { model: 'gone', version: 1, successor: 2 });
    const report = await check();
    expect(report.ok).toBe(false);
    const unreadable = report.problems.filter((p) => p.kind === K.unreadable);
    expect(unreadable.map((p) => p.record?.key).sort()).toEqual([
      'digits/eval-null',
      'digits/odd',
      'rollout-torn',
    ]);
    expect(unreadable.find((p) => p.record?.key === 'rollout-torn')?.message).toMatch(
      /^rollouts rollout-torn: the record is not JSON/,
    );
    // The records after a damaged one are still read and checked.
    expect(
      report.problems.some((p) => p.kind === K.retirementVersion && p.record?.key === 'gone/000000000001'),
    ).toBe(true);
    expect(report.problems.every((p) => p.kind !== 'unreadable')).toBe(true);
  });
});

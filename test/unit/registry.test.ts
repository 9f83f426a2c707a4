// Contract tests of the model registry, run against the LevelDB implementation, plus LevelDB-only batch checks.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ModelRegistry, NewModel, NewVersion } from '../../coordinator/registry/index.ts';
import { createLevelRegistry } from '../../coordinator/registry/index.ts';
import type { CoordinatorDb } from '../../coordinator/store/index.ts';
import {
  binarySublevel,
  jsonSublevel,
  numericKey,
  openCoordinatorDb,
  SUBLEVEL,
} from '../../coordinator/store/index.ts';
import { randomDataKey } from '../../shared/crypto/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { concatWeightData, sha256Hex, type WeightTensor } from '../../shared/tensors/index.ts';

/** One data key for every store of this file: the registry never stores weights in the clear. */
const dataKey = randomDataKey();

/** What the contract suite needs from an implementation besides the registry itself. */
interface RegistryHarness {
  registry: ModelRegistry;
  /** Closes the backing store and opens it again; returns (and installs) a fresh registry on it. */
  reopen(): Promise<ModelRegistry>;
  /** Flips a byte of a version's stored weights, behind the registry's back. */
  corruptBlob(model: string, version: number): Promise<void>;
  /** Whether any weights are stored for the version, read behind the registry's back. */
  hasBlob(model: string, version: number): Promise<boolean>;
  /** Makes the next write that touches a model record fail, after its other records were handed over. */
  failNextModelRecordWrite(): void;
  /** Closes the store and removes its files. */
  close(): Promise<void>;
}

type RegistryFactory = () => Promise<RegistryHarness>;

const architecture: ModelArchitecture = { kind: 'logistic', inputShape: [3], classes: 2 };

function weightsFor(seed: number): WeightTensor[] {
  return [
    {
      name: 'dense/kernel',
      shape: [3, 2],
      dtype: 'float32',
      data: Float32Array.from({ length: 6 }, (_, i) => seed + i / 10),
    },
    { name: 'dense/bias', shape: [2], dtype: 'float32', data: new Float32Array([seed, -seed]) },
  ];
}

function newModel(name: string, seed = 1): NewModel {
  return {
    name,
    description: 'a test model',
    architecture,
    inputShape: [3],
    classes: 2,
    weights: weightsFor(seed),
  };
}

function newVersion(model: string, parentVersion: number | null, seed: number): NewVersion {
  return {
    model,
    parentVersion,
    jobId: 'job-1',
    round: seed,
    agents: ['agent-a', 'agent-b'],
    exampleCounts: { 'agent-a': 30, 'agent-b': 12 },
    metrics: { loss: 0.5 / seed, accuracy: 0.9 },
    weights: weightsFor(seed),
  };
}

function bytesOf(weights: readonly WeightTensor[]): Buffer[] {
  return weights.map((w) => Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength));
}

/** The registry contract: every implementation must pass these tests. */
function registryContract(name: string, factory: RegistryFactory): void {
  describe(`${name} model registry`, () => {
    let harness: RegistryHarness;
    let registry: ModelRegistry;

    beforeEach(async () => {
      harness = await factory();
      registry = harness.registry;
    });

    afterEach(async () => {
      await harness.close();
    });

    it('creates a model whose version 1 holds the initial weights', async () => {
      const { model, version } = await registry.createModel(newModel('iris'));
      expect(model).toMatchObject({
        name: 'iris',
        description: 'a test model',
        architecture,
        inputShape: [3],
        classes: 2,
        paramCount: 8,
        latestVersion: 1,
      });
      expect(version).toMatchObject({
        model: 'iris',
        version: 1,
        parentVersion: null,
        jobId: null,
        round: null,
        agents: [],
        numExamples: 0,
        paramCount: 8,
        sha256: sha256Hex(concatWeightData(weightsFor(1))),
      });
      expect(await registry.getModel('iris')).toEqual(model);
      expect(await registry.getVersion('iris', 1)).toEqual(version);
      expect(bytesOf(await registry.getWeights('iris', 1))).toEqual(bytesOf(weightsFor(1)));
    });

    it('rejects a second model with the same name with LOOM_ERR_CONFLICT', async () => {
      await registry.createModel(newModel('iris'));
      await expect(registry.createModel(newModel('iris', 2))).rejects.toMatchObject({
        code: 'LOOM_ERR_CONFLICT',
      });
      expect(bytesOf(await registry.getWeights('iris', 1))).toEqual(bytesOf(weightsFor(1)));
    });

    it('lets exactly one of two concurrent creations of a name win', async () => {
      const results = await Promise.allSettled([
        registry.createModel(newModel('iris', 1)),
        registry.createModel(newModel('iris', 2)),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(await registry.listVersions('iris')).toHaveLength(1);
    });

    it('rejects model names outside the allowed pattern with LOOM_ERR_INVALID_ARGUMENT', async () => {
      for (const bad of ['', '-leading-dash', 'has space', 'slash/inside', 'x'.repeat(129)]) {
        await expect(registry.createModel(newModel(bad))).rejects.toMatchObject({
          code: 'LOOM_ERR_INVALID_ARGUMENT',
        });
      }
      await expect(registry.createModel(newModel(`A1._-${'x'.repeat(123)}`))).resolves.toBeDefined();
    });

    it('reports unknown models and versions with LOOM_ERR_NOT_FOUND', async () => {
      await expect(registry.getModel('nope')).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
      await expect(registry.listVersions('nope')).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
      await expect(registry.addVersion(newVersion('nope', 1, 2))).rejects.toMatchObject({
        code: 'LOOM_ERR_NOT_FOUND',
      });
      await registry.createModel(newModel('iris'));
      await expect(registry.getVersion('iris', 2)).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
      await expect(registry.getWeights('iris', 2)).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
      await expect(registry.getWeightsData('iris', 2)).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
    });

    it('adds versions that record their lineage, example counts and metrics', async () => {
      await registry.createModel(newModel('iris'));
      const v2 = await registry.addVersion(newVersion('iris', 1, 2));
      const v3 = await registry.addVersion(newVersion('iris', 2, 3));
      expect(v2).toMatchObject({
        model: 'iris',
        version: 2,
        parentVersion: 1,
        jobId: 'job-1',
        round: 2,
        agents: ['agent-a', 'agent-b'],
        exampleCounts: { 'agent-a': 30, 'agent-b': 12 },
        numExamples: 42,
        metrics: { loss: 0.25, accuracy: 0.9 },
        paramCount: 8,
      });
      expect(v3.parentVersion).toBe(2);
      expect((await registry.getModel('iris')).latestVersion).toBe(3);
      expect(await registry.getVersion('iris', 2)).toEqual(v2);
      expect((await registry.listVersions('iris')).map((v) => [v.version, v.parentVersion])).toEqual([
        [1, null],
        [2, 1],
        [3, 2],
      ]);
    });

    it('rejects a parentVersion that does not exist', async () => {
      await registry.createModel(newModel('iris'));
      await expect(registry.addVersion(newVersion('iris', 5, 2))).rejects.toMatchObject({
        code: 'LOOM_ERR_INVALID_ARGUMENT',
      });
      expect((await registry.getModel('iris')).latestVersion).toBe(1);
    });

    it('lists versions in numeric order past 9 and 10', async () => {
      await registry.createModel(newModel('iris'));
      for (let seed = 2; seed <= 12; seed++) await registry.addVersion(newVersion('iris', seed - 1, seed));
      const listed = await registry.listVersions('iris');
      expect(listed.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(bytesOf(await registry.getWeights('iris', 10))).toEqual(bytesOf(weightsFor(10)));
    });

    it('keeps one model’s versions apart from a model whose name extends it', async () => {
      await registry.createModel(newModel('iris'));
      await registry.createModel(newModel('iris-2'));
      await registry.createModel(newModel('iris.b'));
      await registry.addVersion(newVersion('iris-2', 1, 2));
      expect((await registry.listVersions('iris')).map((v) => v.model)).toEqual(['iris']);
      expect((await registry.listVersions('iris-2')).map((v) => v.version)).toEqual([1, 2]);
    });

    it('lists models sorted by name', async () => {
      for (const name of ['mnist', 'cifar', 'iris']) await registry.createModel(newModel(name));
      expect((await registry.listModels()).map((m) => m.name)).toEqual(['cifar', 'iris', 'mnist']);
    });

    it('returns weights bit for bit, including NaN payloads, negative zero and subnormals', async () => {
      const raw = new Uint32Array([0x7fc00001, 0xffa00002, 0x80000000, 0x00000001, 0x7f7fffff, 0x3f800000]);
      const special: WeightTensor[] = [
        { name: 'dense/kernel', shape: [3, 2], dtype: 'float32', data: new Float32Array(raw.buffer) },
        {
          name: 'dense/bias',
          shape: [2],
          dtype: 'float32',
          data: new Float32Array([Number.EPSILON, -1e-40]),
        },
      ];
      await registry.createModel(newModel('iris'));
      await registry.addVersion({ ...newVersion('iris', 1, 2), weights: special });
      const back = await registry.getWeights('iris', 2);
      expect(back.map((w) => [w.name, w.shape, w.dtype])).toEqual(
        special.map((w) => [w.name, w.shape, w.dtype]),
      );
      expect(bytesOf(back)).toEqual(bytesOf(special));
      // The version's sha256 is that of the weights.bin a user downloads.
      const data = await registry.getWeightsData('iris', 2);
      expect(data.equals(concatWeightData(special))).toBe(true);
      expect(sha256Hex(data)).toBe((await registry.getVersion('iris', 2)).sha256);
    });

    it('numbers concurrent addVersion calls consecutively without duplicates', async () => {
      await registry.createModel(newModel('iris'));
      const added = await Promise.all(
        Array.from({ length: 12 }, (_, i) => registry.addVersion(newVersion('iris', 1, i + 2))),
      );
      expect(added.map((v) => v.version).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 12 }, (_, i) => i + 2),
      );
      expect((await registry.getModel('iris')).latestVersion).toBe(13);
      for (const v of added) {
        expect(bytesOf(await registry.getWeights('iris', v.version))).toEqual(
          bytesOf(weightsFor(v.round ?? 0)),
        );
      }
    });

    it('rejects weights that do not match version 1 and writes nothing', async () => {
      await registry.createModel(newModel('iris'));
      const [kernel, bias] = weightsFor(2);
      const mismatches: WeightTensor[][] = [
        [kernel],
        [bias, kernel],
        [{ ...kernel, name: 'other/kernel' }, bias],
        [{ ...kernel, shape: [2, 3] }, bias],
        [kernel, { ...bias, data: new Float32Array(3) }],
      ];
      for (const weights of mismatches) {
        await expect(registry.addVersion({ ...newVersion('iris', 1, 2), weights })).rejects.toMatchObject({
          code: 'LOOM_ERR_INVALID_ARGUMENT',
        });
      }
      expect((await registry.getModel('iris')).latestVersion).toBe(1);
      expect(await registry.listVersions('iris')).toHaveLength(1);
      expect(await harness.hasBlob('iris', 2)).toBe(false);
    });

    it('keeps models, versions and weights after the store is reopened', async () => {
      await registry.createModel(newModel('iris'));
      const v2 = await registry.addVersion(newVersion('iris', 1, 2));
      const reopened = await harness.reopen();
      expect((await reopened.getModel('iris')).latestVersion).toBe(2);
      expect(await reopened.getVersion('iris', 2)).toEqual(v2);
      expect(bytesOf(await reopened.getWeights('iris', 2))).toEqual(bytesOf(weightsFor(2)));
      expect((await reopened.addVersion(newVersion('iris', 2, 3))).version).toBe(3);
    });

    it('reports a corrupted weights blob with LOOM_ERR_INTEGRITY', async () => {
      await registry.createModel(newModel('iris'));
      await registry.addVersion(newVersion('iris', 1, 2));
      await harness.corruptBlob('iris', 2);
      await expect(registry.getWeights('iris', 2)).rejects.toMatchObject({ code: 'LOOM_ERR_INTEGRITY' });
      await expect(registry.getWeightsData('iris', 2)).rejects.toMatchObject({ code: 'LOOM_ERR_INTEGRITY' });
      expect(bytesOf(await registry.getWeights('iris', 1))).toEqual(bytesOf(weightsFor(1)));
    });

    it('leaves no trace of a version whose write fails after its record and blob were handed over', async () => {
      await registry.createModel(newModel('iris'));
      harness.failNextModelRecordWrite();
      await expect(registry.addVersion(newVersion('iris', 1, 2))).rejects.toMatchObject({
        code: 'LOOM_ERR_STORE',
      });
      expect((await registry.getModel('iris')).latestVersion).toBe(1);
      await expect(registry.getVersion('iris', 2)).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
      expect(await harness.hasBlob('iris', 2)).toBe(false);
      // The failure released the model's lock and the next version takes the number 2.
      expect((await registry.addVersion(newVersion('iris', 1, 3))).version).toBe(2);
    });

    it('leaves no trace of a model whose write fails after its version and blob were handed over', async () => {
      harness.failNextModelRecordWrite();
      await expect(registry.createModel(newModel('iris'))).rejects.toMatchObject({ code: 'LOOM_ERR_STORE' });
      await expect(registry.getModel('iris')).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
      expect(await harness.hasBlob('iris', 1)).toBe(false);
      expect(await registry.listModels()).toEqual([]);
      await expect(registry.createModel(newModel('iris'))).resolves.toBeDefined();
    });
  });
}

// LevelDB layout known to the harness: blobs live in the weights sublevel under `<model>/<padded version>`.
function blobKey(model: string, version: number): string {
  return `${model}/${numericKey(version)}`;
}

async function levelRegistryHarness(): Promise<RegistryHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'loom-registry-'));
  let db: CoordinatorDb = await openCoordinatorDb(dir);
  let failModelRecordWrite = false;
  const modelsPrefix = jsonSublevel(db.root, SUBLEVEL.models).prefix;
  // A prewrite hook sees each operation of a batch before anything is committed; throwing there
  // fails the whole batch, which is how a crash halfway through a write would look if it weren't one.
  const installHook = (target: CoordinatorDb): void => {
    target.root.hooks.prewrite.add((op: { sublevel?: { prefix: string } }) => {
      if (failModelRecordWrite && op.sublevel?.prefix === modelsPrefix) {
        failModelRecordWrite = false;
        throw new Error('injected failure writing a model record');
      }
    });
  };
  installHook(db);
  const harness: RegistryHarness = {
    registry: createLevelRegistry(db, { dataKey }),
    async reopen() {
      await db.close();
      db = await openCoordinatorDb(dir);
      installHook(db);
      harness.registry = createLevelRegistry(db, { dataKey });
      return harness.registry;
    },
    async corruptBlob(model, version) {
      const blobs = binarySublevel(db.root, SUBLEVEL.weights);
      const blob = await blobs.get(blobKey(model, version));
      if (blob === undefined) throw new Error(`no blob for ${model} v${version}`);
      // One flipped bit of the sealed blob: its authentication tag no longer matches.
      const corrupted = Buffer.from(blob);
      corrupted[corrupted.length - 1] ^= 0xff;
      await blobs.put(blobKey(model, version), corrupted);
    },
    async hasBlob(model, version) {
      return binarySublevel(db.root, SUBLEVEL.weights).has(blobKey(model, version));
    },
    failNextModelRecordWrite() {
      failModelRecordWrite = true;
    },
    async close() {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

registryContract('LevelDB', levelRegistryHarness);

describe('LevelDB model registry batches', () => {
  let dir: string;
  let db: CoordinatorDb;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-registry-batch-'));
    db = await openCoordinatorDb(dir);
  });

  afterEach(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('commits a version’s record, blob and latestVersion in a single write', async () => {
    const registry = createLevelRegistry(db, { dataKey });
    await registry.createModel(newModel('iris'));
    // The write event carries each operation with its key already prefixed by its sublevel.
    const writes: string[][] = [];
    db.root.on('write', (ops: { key: string }[]) => {
      writes.push(ops.map((op) => op.key));
    });
    await registry.addVersion(newVersion('iris', 1, 2));
    expect(writes).toEqual([
      [
        `!versions!${blobKey('iris', 2)}`,
        `!weights!${blobKey('iris', 2)}`,
        '!models!iris',
        '!meta!commitSeq',
      ],
    ]);
  });

  it('reports a write to a closed database as LOOM_ERR_STORE and leaves nothing behind', async () => {
    const registry = createLevelRegistry(db, { dataKey });
    await registry.createModel(newModel('iris'));
    await db.close();
    await expect(registry.addVersion(newVersion('iris', 1, 2))).rejects.toMatchObject({
      code: 'LOOM_ERR_STORE',
    });
    db = await openCoordinatorDb(dir);
    const reopened = createLevelRegistry(db, { dataKey });
    expect((await reopened.getModel('iris')).latestVersion).toBe(1);
    expect(await binarySublevel(db.root, SUBLEVEL.weights).has(blobKey('iris', 2))).toBe(false);
  });
});

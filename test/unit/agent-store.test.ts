// Tests of the edge agent's local model store on a real LevelDB in a temporary directory.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type LocalModelStore, openLocalModelStore } from '../../edge-agent/store/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';

const architecture: ModelArchitecture = { kind: 'logistic', inputShape: [3], classes: 2 };

function weightsFor(seed: number): WeightTensor[] {
  return [
    {
      name: 'dense_0/kernel',
      shape: [3, 2],
      dtype: 'float32',
      data: Float32Array.from({ length: 6 }, (_, i) => seed + i / 10),
    },
    { name: 'dense_0/bias', shape: [2], dtype: 'float32', data: Float32Array.from([seed, -seed]) },
  ];
}

let dir: string;
let store: LocalModelStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loom-agent-store-'));
  store = await openLocalModelStore(dir);
});

afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the local model store', () => {
  it('keeps the last N versions of a model, the active one among them, and switches to a stored one', async () => {
    for (const version of [1, 2, 3, 4]) {
      await store.put({ name: 'mnist', version, architecture, weights: weightsFor(version) });
      // receivedAt has millisecond resolution: versions arrive in order.
      await new Promise((r) => setTimeout(r, 2));
    }
    await store.put({ name: 'other', version: 1, architecture, weights: weightsFor(9) });
    await store.setActive('mnist', 2);
    expect((await store.active('mnist'))?.version).toBe(2);
    // Kept: the active version 2, and the newest other ones, 4 then 3.
    expect((await store.prune('mnist', 3)).sort()).toEqual([1]);
    expect((await store.list()).filter((v) => v.name === 'mnist').map((v) => v.version)).toEqual([2, 3, 4]);
    expect((await store.prune('mnist', 1)).sort()).toEqual([3, 4]);
    expect((await store.list()).map((v) => `${v.name}@${v.version}`)).toEqual(['mnist@2', 'other@1']);
    await expect(store.setActive('mnist', 4)).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
    expect(await store.check({ full: true })).toEqual([]);
  });

  it('returns the weights it was given, with their hash and time of arrival', async () => {
    const meta = await store.put({ name: 'mnist', version: 1, architecture, weights: weightsFor(1) });
    expect(meta).toMatchObject({ name: 'mnist', version: 1, architecture });
    expect(meta.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.parse(meta.receivedAt)).not.toBeNaN();

    const got = await store.get('mnist', 1);
    expect(got.meta).toEqual(meta);
    expect(got.weights.map((w) => w.name)).toEqual(['dense_0/kernel', 'dense_0/bias']);
    expect(Array.from(got.weights[1].data)).toEqual([1, -1]);
    expect(got.weights[0].data[5]).toBeCloseTo(1.5);
  });

  it('makes the version put last the active one, per model name', async () => {
    expect(await store.active('mnist')).toBeUndefined();
    await store.put({ name: 'mnist', version: 1, architecture, weights: weightsFor(1) });
    await store.put({ name: 'mnist', version: 2, architecture, weights: weightsFor(2) });
    await store.put({ name: 'iris', version: 7, architecture, weights: weightsFor(7) });
    expect((await store.active('mnist'))?.version).toBe(2);
    // A rollback re-sends an older version; it becomes active again.
    await store.put({ name: 'mnist', version: 1, architecture, weights: weightsFor(1) });
    expect((await store.active('mnist'))?.version).toBe(1);
    expect((await store.activeAll()).map((v) => [v.name, v.version])).toEqual([
      ['iris', 7],
      ['mnist', 1],
    ]);
  });

  it('lists every version by name then numeric version', async () => {
    for (const version of [10, 2, 1]) {
      await store.put({ name: 'mnist', version, architecture, weights: weightsFor(version) });
    }
    await store.put({ name: 'a/b c', version: 3, architecture, weights: weightsFor(3) });
    expect((await store.list()).map((v) => `${v.name}@${v.version}`)).toEqual([
      'a/b c@3',
      'mnist@1',
      'mnist@2',
      'mnist@10',
    ]);
  });

  it('reports an unknown version as not found and bad ids as invalid arguments', async () => {
    await expect(store.get('mnist', 4)).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
    await expect(store.get('', 1)).rejects.toMatchObject({ code: 'LOOM_ERR_INVALID_ARGUMENT' });
    await expect(
      store.put({ name: 'mnist', version: -1, architecture, weights: weightsFor(1) }),
    ).rejects.toMatchObject({ code: 'LOOM_ERR_INVALID_ARGUMENT' });
  });

  it('refuses weights whose values do not fill their shape', async () => {
    const weights = weightsFor(1);
    weights[0].data = new Float32Array(5);
    await expect(store.put({ name: 'mnist', version: 1, architecture, weights })).rejects.toMatchObject({
      code: 'LOOM_ERR_TENSOR',
    });
    expect(await store.list()).toEqual([]);
  });

  it('detects stored weights changed behind its back through their SHA-256', async () => {
    await store.put({ name: 'mnist', version: 1, architecture, weights: weightsFor(1) });
    await store.close();
    const db = new Level<string, string>(join(dir, 'models'));
    const blobs = db.sublevel<string, Uint8Array>('blob', { valueEncoding: 'view' });
    for await (const [key, value] of blobs.iterator()) {
      const damaged = Uint8Array.from(value);
      damaged[damaged.length - 1] ^= 0xff;
      await blobs.put(key, damaged);
    }
    await db.close();
    store = await openLocalModelStore(dir);

    const err = await store.get('mnist', 1).catch((e: unknown) => e);
    expect(isLoomError(err, 'LOOM_ERR_INTEGRITY')).toBe(true);
    expect((err as Error).message).toMatch(/mnist.*version 1/);
  });

  it('keeps its versions and active pointers when reopened', async () => {
    await store.put({ name: 'mnist', version: 1, architecture, weights: weightsFor(1) });
    await store.put({ name: 'mnist', version: 2, architecture, weights: weightsFor(2) });
    await store.close();
    store = await openLocalModelStore(dir);
    expect((await store.list()).map((v) => v.version)).toEqual([1, 2]);
    expect((await store.active('mnist'))?.version).toBe(2);
    expect(Array.from((await store.get('mnist', 2)).weights[1].data)).toEqual([2, -2]);
  });

  it('refuses a second opener of the same directory with a store error', async () => {
    await expect(openLocalModelStore(dir)).rejects.toMatchObject({ code: 'LOOM_ERR_STORE_LOCKED' });
  });

  it('turns use after close into a store error', async () => {
    await store.close();
    await expect(store.list()).rejects.toMatchObject({ code: 'LOOM_ERR_STORE' });
    store = await openLocalModelStore(dir);
  });
});

// A site's dataset fingerprint (a hash of its manifest, never the data) and a job's experiment
// record built up round by round, with the claims of each agent per round.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Experiment,
  MAX_CLAIM_SPANS,
  type RoundRecord,
  recordExperimentRound,
} from '../../coordinator/jobs/index.ts';
import {
  datasetFingerprint,
  datasetManifest,
  loadDataset,
  manifestFingerprint,
} from '../../edge-agent/data/index.ts';
import { writeMnistSubset } from '../helpers/cluster.ts';

describe('dataset fingerprint', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-fingerprint-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const site = async (name: string, offset: number, count: number): Promise<string> => {
    const folder = join(dir, name);
    await mkdir(folder, { recursive: true });
    return writeMnistSubset(folder, offset, count);
  };

  it('is a SHA-256 over file names, sizes, counts, the label histogram and the split seed — no example', async () => {
    const ds = await loadDataset(await site('a', 0, 50));
    const manifest = await datasetManifest(ds);
    expect(Object.keys(manifest).sort()).toEqual([
      'examples',
      'featureShape',
      'files',
      'labels',
      'splitSeed',
    ]);
    expect(manifest.files).toEqual([
      { name: 'train-images-idx3-ubyte', bytes: 16 + 50 * 784 },
      { name: 'train-labels-idx1-ubyte', bytes: 8 + 50 },
    ]);
    expect(manifest.examples).toBe(50);
    expect(manifest.labels.reduce((n, l) => n + l.count, 0)).toBe(50);
    expect(manifest.splitSeed).toMatch(/^[0-9a-f]{64}$/);
    // Only names, counts and hashes: nothing of the size of an example is in it.
    expect(JSON.stringify(manifest).length).toBeLessThan(1000);
    expect(await datasetFingerprint(ds)).toMatch(/^[0-9a-f]{64}$/);
    expect(await datasetFingerprint(ds)).toBe(manifestFingerprint(manifest));
  });

  it('is the same for the same data read again, and differs for other data of the same size', async () => {
    const path = await site('b', 0, 50);
    const [one, again, other] = await Promise.all([
      loadDataset(path).then(datasetFingerprint),
      loadDataset(path).then(datasetFingerprint),
      loadDataset(await site('c', 50, 50)).then(datasetFingerprint),
    ]);
    expect(again).toBe(one);
    expect(other).not.toBe(one);
  });
});

function round(n: number, agents: [string, string | undefined, string][]): RoundRecord {
  return {
    round: n,
    state: 'completed',
    targetClients: agents.length,
    minClients: 1,
    sampled: agents.map(([id]) => id),
    participants: agents.map(([agentId, dataFingerprint, loom]) => ({
      agentId,
      numExamples: 100,
      weight: 100,
      norm: 1,
      scale: 1,
      metrics: { loss: 1 / n },
      trainMs: 5,
      roundTripMs: 7,
      claims: { software: { loom }, ...(dataFingerprint ? { dataFingerprint } : {}) },
    })),
    failures: [],
    numExamples: 100 * agents.length,
    trainMetrics: { loss: 1 / n },
    startedAt: new Date().toISOString(),
    durationMs: 10,
    trainMs: 5,
    version: n + 1,
  };
}

const emptyExperiment = (): Experiment => ({
  hyperParameters: {
    rounds: 3,
    epochs: 1,
    batchSize: 32,
    learningRate: 0.1,
    serverLearningRate: 1,
    minClients: 1,
    weightCapRatio: 1.5,
    clipFactor: 1.5,
    engine: 'typed-array',
    baseVersion: 1,
    holdoutFraction: 0.1,
    versionEvery: 1,
    roundTimeoutSec: 60,
  },
  agents: {},
  rounds: [],
});

describe('experiment record', () => {
  const fa = 'a'.repeat(64);
  const fb = 'b'.repeat(64);

  it('records each round and, per agent, what it claimed, its labels and how many rounds it took part in', () => {
    const e = emptyExperiment();
    const labels = { 'site-a': { site: 'a' } } as Record<string, Record<string, string>>;
    recordExperimentRound(e, round(1, [['site-a', fa, '0.1.0']]), (id) => labels[id]);
    recordExperimentRound(
      e,
      round(2, [
        ['site-a', fa, '0.1.0'],
        ['site-b', undefined, '0.1.0'],
      ]),
      (id) => labels[id],
    );
    expect(e.rounds.map((r) => [r.round, r.participants, r.version, r.trainMetrics.loss])).toEqual([
      [1, 1, 2, 1],
      [2, 2, 3, 0.5],
    ]);
    expect(e.agents['site-a']).toEqual({
      software: { loom: '0.1.0' },
      dataFingerprint: fa,
      labels: { site: 'a' },
      firstRound: 1,
      lastRound: 2,
      rounds: 2,
    });
    expect(e.agents['site-b']).toEqual({
      software: { loom: '0.1.0' },
      labels: {},
      firstRound: 2,
      lastRound: 2,
      rounds: 1,
    });
  });

  it('keeps what each round used when a site restarts with other data mid-job', () => {
    const e = emptyExperiment();
    recordExperimentRound(e, round(1, [['site-a', fa, '0.1.0']]), () => undefined);
    recordExperimentRound(e, round(2, [['site-a', fa, '0.1.0']]), () => undefined);
    recordExperimentRound(e, round(3, [['site-a', fb, '0.1.1']]), () => undefined);
    expect(e.agents['site-a']).toMatchObject({ dataFingerprint: fb, software: { loom: '0.1.1' }, rounds: 3 });
    expect(e.agents['site-a'].history).toEqual([
      { fromRound: 1, toRound: 2, software: { loom: '0.1.0' }, dataFingerprint: fa },
      { fromRound: 3, toRound: 3, software: { loom: '0.1.1' }, dataFingerprint: fb },
    ]);
  });

  it('bounds the claim history of an agent that changes its claims every round', () => {
    const e = emptyExperiment();
    for (let r = 1; r <= 100; r++) {
      recordExperimentRound(
        e,
        round(r, [['liar', r.toString(16).padStart(64, '0'), '0.1.0']]),
        () => undefined,
      );
    }
    const history = e.agents.liar.history!;
    expect(history).toHaveLength(MAX_CLAIM_SPANS);
    expect(history[0].fromRound).toBe(1);
    expect(history.at(-1)!.fromRound).toBe(100);
    expect(e.agents.liar.rounds).toBe(100);
  });
});

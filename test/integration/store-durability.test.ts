// The coordinator's store after a disk fault and through backups: a damaged or truncated newest
// LevelDB log stops the start with a report (and `loom coordinator check` says the same), an
// operator can accept it knowingly, a backup taken while the coordinator runs restores every
// model, version, job, agent and audit entry, and weights are encrypted at rest.
import {
  chmod,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyAndCsr, verifyCertificateChain } from '../../certs/index.ts';
import {
  type CoordinatorConfig,
  initCoordinator,
  type RunningCoordinator,
  resolveCoordinatorConfig,
  startCoordinator,
} from '../../coordinator/index.ts';
import type { JobView } from '../../coordinator/jobs/index.ts';
import { SUBLEVEL } from '../../coordinator/store/index.ts';
import { openLocalModelStore } from '../../edge-agent/store/index.ts';
import { isLoomError, type LoomError } from '../../shared/errors/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { loom, loomAsync } from '../helpers/loom-cli.ts';

const silent = createLogger('silent');
const ARCH = { kind: 'mlp', inputShape: [784], layers: [16, 10], activation: 'relu' };

let cluster: TestCluster;
let work: string;
/** The data dir of the cluster's coordinator, stopped once the state below is made. */
let source: string;
let jobId: string;
let snapshot: { models: string[]; versions: string[]; jobs: string[]; agents: string[]; audit: number };

async function describeStore(c: RunningCoordinator): Promise<typeof snapshot> {
  const models = await c.registry.listModels();
  const versions = (await Promise.all(models.map((m) => c.registry.listVersions(m.name)))).flat();
  return {
    models: models.map((m) => m.name).sort(),
    versions: versions.map((v) => `${v.model}@${v.version}:${v.sha256}`).sort(),
    jobs: (await c.jobs.list()).map((j) => `${j.id}:${j.state}:${j.latestVersion}`).sort(),
    agents: (await c.agents.list()).map((a) => `${a.id}:${a.name}:${a.revoked}`).sort(),
    audit: (await c.audit.verify()).entries,
  };
}

async function configFor(dataDir: string): Promise<CoordinatorConfig> {
  return resolveCoordinatorConfig(dataDir, { host: '127.0.0.1', apiPort: 0, agentPort: 0 });
}

async function startError(dataDir: string): Promise<LoomError> {
  const err = await startCoordinator(await configFor(dataDir), silent).then(
    async (c) => {
      await c.stop();
      throw new Error('the coordinator started');
    },
    (e: unknown) => e,
  );
  if (!isLoomError(err)) throw err;
  return err;
}

/** A copy of the stopped source data dir, to damage without touching the others. */
async function copyOfSource(name: string): Promise<string> {
  const dir = join(work, name);
  await cp(source, dir, { recursive: true });
  return dir;
}

async function newestLog(dataDir: string): Promise<string> {
  const logs = (await readdir(join(dataDir, 'db'))).filter((f) => f.endsWith('.log')).sort();
  return join(dataDir, 'db', logs.at(-1)!);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'loom-durability-'));
  cluster = await startTestCluster();
  await cluster.startAgent('site-1', { offset: 0, count: 300 });
  await cluster.startAgent('site-2', { offset: 300, count: 300 });
  await cluster.waitForAgents(2);
  await cluster.api('/v1/models', { name: 'digits', architecture: ARCH });
  const { id } = await cluster.api<{ id: string }>('/v1/jobs', {
    model: 'digits',
    rounds: 2,
    clientsPerRound: 2,
    minClients: 2,
    roundTimeoutSec: 60,
    learningRate: 0.1,
  });
  jobId = id;
  expect((await cluster.waitForJob(id)).state).toBe('completed');
  await cluster.api('/v1/tokens', { name: 'ci viewer', role: 'viewer' });
  snapshot = await describeStore(cluster.coordinator);
  source = join(cluster.dir, 'coordinator');
}, 120_000);

afterAll(async () => {
  await cluster?.close();
  await rm(work, { recursive: true, force: true });
});

describe('the store after a disk fault', () => {
  it('takes a consistent backup while the coordinator runs (over its local admin socket)', async () => {
    const out = join(work, 'running.backup');
    // Asynchronously: this process serves the coordinator the command talks to.
    const r = await loomAsync(['coordinator', 'backup', '--data-dir', source, '--out', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as {
      file: string;
      entries: number;
      files: number;
      dataKeyId: string;
    };
    expect(summary).toMatchObject({ file: out, files: 5 });
    expect(summary.entries).toBeGreaterThan(10);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    // The data key is never in a backup.
    expect((await readFile(out)).includes(await readFile(join(source, 'data.key')))).toBe(false);
    // Every test below works on copies of a stopped coordinator.
    await cluster.coordinator.stop();
  });

  it('refuses to start when 64 bytes of the newest log were overwritten, and keeps refusing', async () => {
    const dir = await copyOfSource('overwritten');
    const log = await newestLog(dir);
    const bytes = await readFile(log);
    bytes.fill(0x41, bytes.length >> 1, (bytes.length >> 1) + 64);
    await writeFile(log, bytes);

    const err = await startError(dir);
    expect(err.code).toBe('LOOM_ERR_STORE_DAMAGED');
    expect(err.message).toMatch(/LevelDB dropped data it could not read/);
    expect(err.message).toMatch(/--ignore-store-damage/);
    // LevelDB rewrites the damaged log as it opens; the finding is kept, so a second start refuses too.
    expect((await startError(dir)).code).toBe('LOOM_ERR_STORE_DAMAGED');

    const check = loom(['coordinator', 'check', '--data-dir', dir, '--json']);
    expect(check.status).toBe(1);
    const report = JSON.parse(check.stdout) as { ok: boolean; problems: { kind: string }[] };
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.kind)).toContain('level-recovery');
  });

  it('refuses to start when the newest log was cut in half: the lost commits and what they held are named', async () => {
    const dir = await copyOfSource('truncated');
    const log = await newestLog(dir);
    await truncate(log, (await stat(log)).size >> 1);
    const err = await startError(dir);
    expect(err.code).toBe('LOOM_ERR_STORE_DAMAGED');
    const problems = (err.details?.problems as { kind: string; message: string }[]).map((p) => p.kind);
    // LevelDB drops a torn tail without a word: only the durable head tells.
    expect(problems).toContain('lost-commits');
    const readable = loom(['coordinator', 'check', '--data-dir', dir]);
    expect(readable.status).toBe(1);
    expect(readable.stdout).toMatch(
      /\[lost-commits\] the database holds commits up to #\d+, but commit #\d+ was made durable/,
    );
    expect(readable.stdout).toMatch(/checked \d+ model\(s\), \d+ version\(s\), \d+ job\(s\)/);
  });

  it('starts with --ignore-store-damage, audits what was accepted, and later starts go on', async () => {
    const dir = await copyOfSource('accepted');
    const log = await newestLog(dir);
    await truncate(log, (await stat(log)).size >> 1);
    const started = await startCoordinator(await configFor(dir), silent, { ignoreStoreDamage: true });
    const entries = await started.audit.list({ limit: 1000 });
    expect(entries.at(-1)).toMatchObject({
      action: 'store.damage-accepted',
      actor: 'local: loom coordinator start --ignore-store-damage',
    });
    expect(JSON.stringify(entries.at(-1)?.details)).toMatch(/commits up to/);
    // A job the damage sent back to "running" is not silently trained again from scratch here:
    // the report named it, and the operator chose to go on.
    await started.stop();
    const again = await startCoordinator(await configFor(dir), silent);
    expect(again.storeReport.ok).toBe(true);
    await again.stop();
  });
});

describe('a job whose end was lost', () => {
  it('is not trained again: the start refuses, and once accepted the job ends as failed instead of resuming', async () => {
    const dir = await copyOfSource('reverted');
    // As if the write that completed the job had been lost: the record says running again.
    const db = new Level<string, unknown>(join(dir, 'db'), { valueEncoding: 'json' });
    const jobs = db.sublevel<string, { state: string }>(SUBLEVEL.jobs, { valueEncoding: 'json' });
    await jobs.put(jobId, { ...(await jobs.get(jobId))!, state: 'running' });
    await db.close();

    const err = await startError(dir);
    expect(err.code).toBe('LOOM_ERR_STORE_DAMAGED');
    expect(err.message).toMatch(
      new RegExp(`\\[job-state\\] job ${jobId}: shows running, but its last round 2 is on record`),
    );

    const c = await startCoordinator(await configFor(dir), silent, { ignoreStoreDamage: true });
    try {
      const job = await c.jobs.get(jobId);
      expect(job).toMatchObject({ state: 'failed', error: { code: 'LOOM_ERR_STORE_DAMAGED' } });
      expect(job.rounds).toHaveLength(2);
      expect(c.jobs.isRunning(jobId)).toBe(false);
    } finally {
      await c.stop();
    }
  });
});

describe('backup and restore', () => {
  it('restores a backup into a new data dir with every model, version, job, agent and audit entry', async () => {
    const restored = join(work, 'restored');
    const key = (await readFile(join(source, 'data.key'), 'utf8')).trim();
    const r = loom(
      ['coordinator', 'restore', '--data-dir', restored, '--from', join(work, 'running.backup'), '--json'],
      {
        LOOM_DATA_KEY: key,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { report: { ok: boolean; counts: Record<string, number> } };
    expect(result.report.ok).toBe(true);
    expect(result.report.counts).toMatchObject({ models: 1, versions: 3, jobs: 1, rounds: 2, agents: 2 });
    for (const d of ['', 'pki', 'db']) expect((await stat(join(restored, d))).mode & 0o777).toBe(0o700);
    expect((await stat(join(restored, 'pki', 'ca-key.pem'))).mode & 0o777).toBe(0o600);

    // The key goes where the restored coordinator looks for it.
    await writeFile(join(restored, 'data.key'), `${key}\n`, { mode: 0o600 });
    const c = await startCoordinator(await configFor(restored), silent);
    try {
      expect(await describeStore(c)).toEqual(snapshot);
      expect((await c.audit.verify()).ok).toBe(true);
      const job = (await c.jobs.get(jobId)) as JobView;
      expect(job.rounds.map((x) => x.version)).toEqual([2, 3]);
      expect((await c.registry.getWeights('digits', 3)).length).toBe(4);
    } finally {
      await c.stop();
    }
  });

  it('refuses to restore over a coordinator, and a damaged backup, writing nothing', async () => {
    const over = loom([
      'coordinator',
      'restore',
      '--data-dir',
      source,
      '--from',
      join(work, 'running.backup'),
    ]);
    expect(over.status).not.toBe(0);
    expect(over.stderr).toMatch(
      /already holds \(part of\) a coordinator \(found .*pki\/ca-key\.pem.*LOOM_ERR_CONFLICT/,
    );

    const damaged = join(work, 'damaged.backup');
    const bytes = await readFile(join(work, 'running.backup'));
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(damaged, bytes);
    const target = join(work, 'never');
    const r = loom(['coordinator', 'restore', '--data-dir', target, '--from', damaged]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/backup is damaged.*LOOM_ERR_INTEGRITY/);
    await expect(stat(join(target, 'db'))).rejects.toThrow();
  });
});

describe('encryption at rest', () => {
  it('keeps no weights in the clear in the database files', async () => {
    const dir = await copyOfSource('scan');
    const c = await startCoordinator(await configFor(dir), silent);
    const data = await c.registry.getWeightsData('digits', 3);
    await c.stop();
    // 64 bytes of the served weights.bin, from its middle: a plaintext blob would contain them.
    const probe = data.subarray(data.length >> 1, (data.length >> 1) + 64);
    for (const file of await readdir(join(dir, 'db'))) {
      expect((await readFile(join(dir, 'db', file))).includes(probe), file).toBe(false);
    }
  });

  it('says which key it needs when the key file is gone or another key is given', async () => {
    const dir = await copyOfSource('keys');
    await rename(join(dir, 'data.key'), join(dir, 'data.key.moved'));
    const missing = await startError(dir);
    expect(missing.code).toBe('LOOM_ERR_DATA_KEY');
    expect(missing.message).toMatch(
      /data\.key does not exist; this store's weights are encrypted with data key [0-9a-f]{16}/,
    );

    await writeFile(join(dir, 'data.key'), `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
    const wrong = await startError(dir);
    expect(wrong.code).toBe('LOOM_ERR_DATA_KEY');
    expect(wrong.message).toMatch(
      /holds data key [0-9a-f]{16}, but this store is encrypted with data key [0-9a-f]{16}/,
    );

    await writeFile(join(dir, 'data.key'), await readFile(join(dir, 'data.key.moved')));
    await chmod(join(dir, 'data.key'), 0o644);
    expect((await startError(dir)).message).toMatch(/readable by others .*chmod 600/);
  });
});

describe('a CA key under a passphrase', () => {
  it('is encrypted on disk, refuses to start without the passphrase, and signs with it', async () => {
    const dir = join(work, 'ca-passphrase');
    await initCoordinator({ dataDir: dir, caPassphrase: 'correct horse battery' });
    const pem = await readFile(join(dir, 'pki', 'ca-key.pem'), 'utf8');
    expect(pem).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
    const without = await startError(dir);
    expect(without.code).toBe('LOOM_ERR_PKI');
    expect(without.message).toMatch(/CA key .* is encrypted: give its passphrase \(\$LOOM_CA_PASSPHRASE/);
    await writeFile(join(dir, 'wrong.pass'), 'not the passphrase\n', { mode: 0o600 });
    const config = await resolveCoordinatorConfig(dir, { host: '127.0.0.1', apiPort: 0, agentPort: 0 });
    await expect(
      startCoordinator({ ...config, caPassphraseFile: join(dir, 'wrong.pass') }, silent),
    ).rejects.toMatchObject({ code: 'LOOM_ERR_PKI', message: expect.stringMatching(/does not open/) });
    await writeFile(join(dir, 'ca.pass'), 'correct horse battery\n', { mode: 0o600 });
    const c = await startCoordinator({ ...config, caPassphraseFile: join(dir, 'ca.pass') }, silent);
    try {
      const { token } = await c.enrollment.createToken('test');
      const { csrPem } = createKeyAndCsr({ commonName: 'site' });
      const enrolled = await c.enrollment.enroll(token, csrPem, 'site');
      expect(() => verifyCertificateChain(enrolled.caCertificate, enrolled.certificate)).not.toThrow();
    } finally {
      await c.stop();
    }
  });
});

describe('data folders', () => {
  it('are private (0700) whatever the umask, also when they existed before with a wider mode', async () => {
    const previous = process.umask(0o000);
    try {
      const coord = join(work, 'wide-coordinator');
      const agent = join(work, 'wide-agent');
      for (const d of [coord, agent]) {
        await mkdir(d, { mode: 0o777 });
        await chmod(d, 0o777);
      }
      await initCoordinator({ dataDir: coord });
      for (const d of ['', 'pki', 'db']) expect((await stat(join(coord, d))).mode & 0o777, d).toBe(0o700);
      const store = await openLocalModelStore(agent);
      await store.close();
      for (const d of ['', 'models']) expect((await stat(join(agent, d))).mode & 0o777, d).toBe(0o700);
      expect((await stat(join(agent, 'data.key'))).mode & 0o777).toBe(0o600);
      // A folder opened up later is closed again at the next start.
      await chmod(coord, 0o755);
      const c = await startCoordinator(await configFor(coord), silent);
      await c.stop();
      expect((await stat(coord)).mode & 0o777).toBe(0o700);
    } finally {
      process.umask(previous);
    }
  });
});

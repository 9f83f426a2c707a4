// The operator's `loom` commands as a person or a script runs them: real processes against a real
// coordinator (TLS with its own CA pinned by fingerprint, LevelDB in a temp folder) with two MNIST
// agents, and the audit check of a stopped coordinator's data dir after an entry was tampered with.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caFingerprintOf } from '../../shared/api-client/index.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { loomAsync, type Run } from '../helpers/loom-cli.ts';

/** The command failed with exit code 1 and one `loom: ... [CODE]` line, without a stack trace. */
function expectOneLineError(r: Run, code: string, pattern?: RegExp): void {
  expect(r.status, r.stdout + r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^loom: .*\\[${code}\\]$`));
  if (pattern) expect(lines[0]).toMatch(pattern);
}

function parsed<T>(r: Run): T {
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

describe('loom operator commands', () => {
  let cluster: TestCluster;
  let env: Record<string, string>;
  let work: string;
  const run = (args: string[], extra: Record<string, string> = {}): Promise<Run> =>
    loomAsync(args, { ...env, ...extra });

  beforeAll(async () => {
    cluster = await startTestCluster();
    work = await mkdtemp(join(tmpdir(), 'loom-operator-cli-'));
    env = {
      LOOM_URL: cluster.apiUrl,
      LOOM_TOKEN: cluster.adminToken,
      LOOM_CA_FINGERPRINT: caFingerprintOf(cluster.caPem),
      LOOM_CA_FILE: '',
    };
    await Promise.all([
      cluster.startAgent('site-a', { offset: 0, count: 120 }),
      cluster.startAgent('site-b', { offset: 120, count: 120 }),
    ]);
    await cluster.waitForAgents(2);
  });
  afterAll(async () => {
    await cluster?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('has help for every operator group and command, in the form of the other commands', async () => {
    const groups = await Promise.all(
      ['models', 'jobs', 'agents', 'tokens', 'audit'].map((g) => run([g, '--help'])),
    );
    for (const r of groups) {
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^Usage: loom \w+ <command> \[options\]/);
    }
    expect(groups[1].stdout).toMatch(
      /^ {2}start .*\n {2}list .*\n {2}show .*\n {2}watch .*\n {2}cancel .*\n {2}compare /m,
    );
    const top = await run(['--help']);
    expect(top.stdout).toMatch(/jobs watch +follow a job live/);
    const watch = await run(['jobs', 'watch', '--help']);
    expect(watch.status).toBe(0);
    expect(watch.stdout).toMatch(/Usage: loom jobs watch ID/);
    expect(watch.stdout).toMatch(/--ca-fingerprint <value>.*LOOM_CA_FINGERPRINT/);
    expect(watch.stdout).toMatch(/Arguments:\n {2}ID/);
  });

  it('creates, lists, shows and downloads models, with tables for people and --json for scripts', async () => {
    const created = parsed<{ name: string; version: { version: number } }>(
      await run([
        'models',
        'create',
        'digits',
        '--mlp',
        '784:16,10',
        '--description',
        'MNIST digits',
        '--json',
      ]),
    );
    expect(created).toMatchObject({ name: 'digits', version: { version: 1 } });
    const [table, listed, shown, versions, duplicate, noArch] = await Promise.all([
      run(['models', 'list']),
      run(['models', 'list', '--json']),
      run(['models', 'show', 'digits']),
      run(['models', 'versions', 'digits', '--json']),
      run(['models', 'create', 'digits', '--logistic', '4:3']),
      run(['models', 'create', 'other']),
    ]);
    expect(table.status).toBe(0);
    const [header, row] = table.stdout.trim().split('\n');
    expect(header).toMatch(/^NAME +LATEST +PARAMS +INPUT +CLASSES +KIND +CREATED$/);
    // Columns line up under their headings, and numbers are readable.
    expect(row).toMatch(/^digits +v1 +12,730 +\[784\] +10 +mlp /);
    expect(row.indexOf('12,730') + '12,730'.length).toBe(header.indexOf('PARAMS') + 'PARAMS'.length);
    expect(parsed<{ models: { name: string }[] }>(listed).models.map((m) => m.name)).toEqual(['digits']);
    expect(shown.stdout).toMatch(/^description: +MNIST digits$/m);
    expect(shown.stdout).toMatch(/^deployed version: +none$/m);
    expect(parsed<{ versions: { version: number }[] }>(versions).versions).toHaveLength(1);
    expectOneLineError(duplicate, 'LOOM_ERR_CONFLICT');
    expectOneLineError(
      noArch,
      'LOOM_ERR_INVALID_ARGUMENT',
      /--mlp, --logistic, --cnn or --architecture-file/,
    );

    const dir = join(work, 'download');
    const download = parsed<{ bytes: number; sha256: string }>(
      await run(['models', 'download', 'digits', 'latest', '--out', dir, '--json']),
    );
    expect(download.bytes).toBe(12_730 * 4);
    const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as {
      weightsManifest: { paths: string[] }[];
    };
    expect(modelJson.weightsManifest[0].paths).toEqual(['weights.bin']);
    expect((await readFile(join(dir, 'weights.bin'))).length).toBe(download.bytes);
  });

  it('keeps role boundaries: a viewer reads but cannot revoke an agent or make tokens', async () => {
    const viewer = parsed<{ token: string; role: string }>(
      await run(['tokens', 'create', '--name', 'auditor', '--role', 'viewer', '--json']),
    );
    expect(viewer.role).toBe('viewer');
    const tokenFile = join(work, 'viewer.token');
    await writeFile(tokenFile, `${viewer.token}\n`, { mode: 0o600 });
    const asViewer = (args: string[]): Promise<Run> =>
      run([...args, '--token-file', tokenFile], { LOOM_TOKEN: '' });
    const agents = parsed<{ agents: { id: string; name: string; online: boolean }[] }>(
      await asViewer(['agents', 'list', '--json']),
    );
    expect(agents.agents.map((a) => [a.name, a.online]).sort()).toEqual([
      ['site-a', true],
      ['site-b', true],
    ]);
    const [revoke, mint, noToken, badRole] = await Promise.all([
      asViewer(['agents', 'revoke', agents.agents[0].id]),
      asViewer(['tokens', 'create', '--name', 'x', '--role', 'admin']),
      run(['agents', 'list'], { LOOM_TOKEN: '' }),
      run(['tokens', 'create', '--name', 'x', '--role', 'root']),
    ]);
    expectOneLineError(revoke, 'LOOM_ERR_FORBIDDEN', /needs the operator role; the token has viewer/);
    expectOneLineError(mint, 'LOOM_ERR_FORBIDDEN');
    expectOneLineError(noToken, 'LOOM_ERR_UNAUTHORIZED');
    expectOneLineError(badRole, 'LOOM_ERR_INVALID_ARGUMENT', /--role must be one of admin, operator, viewer/);
    const shown = parsed<{ id: string; revoked: boolean }>(
      await asViewer(['agents', 'show', agents.agents[0].id, '--json']),
    );
    expect(shown).toMatchObject({ id: agents.agents[0].id, revoked: false });
    const tokens = parsed<{ tokens: { name: string; role: string }[] }>(
      await run(['tokens', 'list', '--json']),
    );
    expect(tokens.tokens.map((t) => t.role).sort()).toEqual(['admin', 'viewer']);
  });

  it('refuses a coordinator whose CA is not the pinned one, and says what is missing', async () => {
    const [wrong, missing] = await Promise.all([
      run(['models', 'list'], { LOOM_CA_FINGERPRINT: 'ab'.repeat(32) }),
      run(['models', 'list'], { LOOM_CA_FINGERPRINT: '' }),
    ]);
    expectOneLineError(wrong, 'LOOM_ERR_CA_MISMATCH', /not the pinned sha256:abababab/);
    expectOneLineError(
      missing,
      'LOOM_ERR_INVALID_CONFIG',
      /--ca-fingerprint.*LOOM_CA_FINGERPRINT.*--ca-file/,
    );
    const byFile = await run(
      ['models', 'list', '--json', '--ca-file', join(cluster.dir, 'coordinator', 'pki', 'ca-cert.pem')],
      {
        LOOM_CA_FINGERPRINT: '',
      },
    );
    expect(parsed<{ models: unknown[] }>(byFile).models).toHaveLength(1);
  });

  it('starts jobs, follows one to its end with plain lines when piped, and compares two', async () => {
    const job = parsed<{ id: string; state: string }>(
      await run([
        'jobs',
        'start',
        '--model',
        'digits',
        '--rounds',
        '2',
        '--min-clients',
        '2',
        '--learning-rate',
        '0.1',
        '--json',
      ]),
    );
    const watch = await run(['jobs', 'watch', job.id]);
    expect(watch.status, watch.stderr).toBe(0);
    const lines = watch.stdout.trim().split('\n');
    // Piped: no cursor movement, one line per event, ending with the job's end.
    expect(watch.stdout.includes('\u001b[')).toBe(false);
    expect(lines[0]).toMatch(new RegExp(`^watching job ${job.id} \\(digits, 2 rounds`));
    expect(watch.stdout).toMatch(/^round 1\/2 started: asking 2 agent\(s\), quorum 2$/m);
    // 120 images a site, of which 10% (12) are its hold-out part.
    expect(watch.stdout).toMatch(/^round 1\/2: update from agent-\S+ \(108 examples\), [12]\/2 reported$/m);
    expect(watch.stdout).toMatch(
      /^round 2\/2 completed: 2 reported, 0 failed, loss \d.*accuracy \d.*, v3, /m,
    );
    expect(lines.at(-1)).toMatch(new RegExp(`^job ${job.id} completed; latest version v3$`));

    // A finished job: the stream gives its snapshot and its end, and --json is one event per line.
    const again = await run(['jobs', 'watch', job.id, '--json']);
    const events = again.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string });
    expect(events[0].event).toBe('snapshot');
    expect(events.at(-1)?.event).toBe('job-finished');

    const second = parsed<{ id: string }>(
      await run([
        'jobs',
        'start',
        '--model',
        'digits',
        '--rounds',
        '1',
        '--learning-rate',
        '0.05',
        '--batch-size',
        '16',
        '--json',
      ]),
    );
    expect((await run(['jobs', 'watch', second.id])).status).toBe(0);
    const [list, show, compare, compareJson, cancel] = await Promise.all([
      run(['jobs', 'list', '--model', 'digits']),
      run(['jobs', 'show', job.id]),
      run(['jobs', 'compare', job.id, second.id]),
      run(['jobs', 'compare', job.id, second.id, '--json']),
      run(['jobs', 'cancel', job.id]),
    ]);
    expect(list.stdout.trim().split('\n')).toHaveLength(3);
    expect(list.stdout).toMatch(new RegExp(`^${second.id} +digits +completed +1/1 +v4 `, 'm'));
    expect(show.stdout).toMatch(
      /^ROUND +STATE +SAMPLED +REPORTED +FAILED +EXAMPLES +LOSS +ACCURACY +VERSION +TIME$/m,
    );
    expect(show.stdout).toMatch(/^ +2\/2 +completed +2 +2 +0 +216 /m);
    expect(compare.status, compare.stderr).toBe(0);
    expect(compare.stdout).toMatch(/^\* +learningRate +0\.1 +0\.05$/m);
    expect(compare.stdout).toMatch(/^\* +batchSize +32 +16$/m);
    expect(compare.stdout).toMatch(/^ +epochs +1 +1$/m);
    expect(compare.stdout).toMatch(/ROUND +LOSS A +LOSS B +B-A/);
    // The same two sites in both jobs, with the software and data fingerprint each claimed.
    expect(compare.stdout).toMatch(/^ +AGENT +ROUNDS A +ROUNDS B +SOFTWARE A +SOFTWARE B +DATA A +DATA B$/m);
    expect(compare.stdout).toMatch(
      /^ +agent-\S+ +2 +1 +\S+ node v\S+ [a-z0-9-]+ +\S+ node v\S+ [a-z0-9-]+ +[0-9a-f]{12} +[0-9a-f]{12}$/m,
    );
    const cmp = parsed<{
      settings: { name: string; differs: boolean }[];
      agents: { agentId: string; differs?: { software: boolean; dataFingerprint: boolean } }[];
      rounds: { round: number; b?: unknown }[];
    }>(compareJson);
    expect(cmp.agents).toHaveLength(2);
    for (const a of cmp.agents) expect(a.differs).toEqual({ software: false, dataFingerprint: false });
    expect(cmp.settings.find((s) => s.name === 'rounds')?.differs).toBe(true);
    expect(cmp.rounds.map((r) => [r.round, r.b !== undefined])).toEqual([
      [1, true],
      [2, false],
    ]);
    expectOneLineError(cancel, 'LOOM_ERR_CONFLICT');
    expectOneLineError(await run(['jobs', 'watch', 'job-nope']), 'LOOM_ERR_NOT_FOUND');
  });

  it('lists the audit log and verifies its chain through the API and over the admin socket', async () => {
    const page = parsed<{ entries: { seq: number; action: string }[]; chain: { ok: boolean } }>(
      await run(['audit', 'list', '--json', '--action', 'model.create']),
    );
    expect(page.chain.ok).toBe(true);
    expect(page.entries.map((e) => e.action)).toEqual(['model.create']);
    const text = await run(['audit', 'list', '--limit', '2']);
    expect(text.stdout).toMatch(/^SEQ +AT +ACTOR +ACTION +TARGET +DETAILS$/m);
    expect(text.stderr).toMatch(/^more entries: loom audit list --after 2$/m);
    const [online, running] = await Promise.all([
      run(['audit', 'verify', '--json']),
      run(['audit', 'verify', '--data-dir', join(cluster.dir, 'coordinator'), '--json']),
    ]);
    expect(parsed<{ ok: boolean; source: string }>(online)).toMatchObject({ ok: true, source: 'api' });
    expect(parsed<{ ok: boolean; source: string }>(running)).toMatchObject({
      ok: true,
      source: 'running-coordinator',
    });
  });

  it('names the first tampered entry of a stopped coordinator and exits 1', async () => {
    const dataDir = join(cluster.dir, 'coordinator');
    await cluster.coordinator.stop();
    const intact = await run(['audit', 'verify', '--data-dir', dataDir]);
    expect(intact.status, intact.stderr).toBe(0);
    expect(intact.stdout.trim()).toMatch(
      new RegExp(`^audit chain intact: \\d+ entries \\(read from ${dataDir}\\)$`),
    );

    // Someone with the disk rewrites who made the second entry.
    const db = new Level<string, unknown>(join(dataDir, 'db'), { valueEncoding: 'json' });
    const audit = db.sublevel<string, { seq: number; action: string; actor: string }>('audit', {
      valueEncoding: 'json',
    });
    const entries = await audit.iterator().all();
    const [key, entry] = entries.find(([, e]) => e.seq === 2)!;
    await audit.put(key, { ...entry, actor: 'nobody' });
    await db.close();

    // One after the other: each opens the stopped coordinator's database, which LevelDB locks.
    const text = await run(['audit', 'verify', '--data-dir', dataDir]);
    const json = await run(['audit', 'verify', '--data-dir', dataDir, '--json']);
    expect(text.status).toBe(1);
    expect(text.stdout).toMatch(
      new RegExp(`^audit chain broken at entry ${entry.seq}: entry ${entry.seq} does not match its hash`),
    );
    const action = entry.action.replaceAll('.', '\\.');
    expect(text.stdout).toMatch(new RegExp(`^ {2}entry ${entry.seq}: .* nobody ${action} `, 'm'));
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      brokenAt: entry.seq,
      entry: { actor: 'nobody' },
    });
  });
});

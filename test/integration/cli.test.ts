// The `loom` command as a user runs it: real processes for the coordinator and an agent.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestJson } from '../../shared/http/index.ts';
import { waitUntil, writeMnistSubset } from '../helpers/cluster.ts';
import { CLI, loom, loomAsync, type Run } from '../helpers/loom-cli.ts';

/**
 * The command failed with one `loom: ... [CODE]` line matching `pattern`, after whatever log lines
 * came before it, and printed no stack trace.
 */
function expectOneLineError(r: Run, pattern: RegExp): void {
  expect(r.status, r.stderr).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines.filter((l) => l.startsWith('loom: ') && !l.startsWith('loom: warning'))).toHaveLength(1);
  expect(lines.at(-1)).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

/** Starts a long-running command and resolves with its first stdout line (its --json status). */
function startLoom(args: string[]): {
  child: ChildProcess;
  firstLine: Promise<Record<string, unknown>>;
  stderr: () => string;
} {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const firstLine = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  return { child, firstLine, stderr: () => err };
}

/** `loom coordinator start --json` with free ports, on loopback unless `bind` says otherwise. */
function startCoordinatorProcess(
  coordDir: string,
  bind: string[] = ['--bind', '127.0.0.1'],
): ReturnType<typeof startLoom> {
  return startLoom([
    'coordinator',
    'start',
    '--data-dir',
    coordDir,
    ...bind,
    '--api-port',
    '0',
    '--agent-port',
    '0',
    '--json',
  ]);
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

describe('loom CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints help for every command and command group', () => {
    for (const cmd of [
      [],
      ['coordinator'],
      ['agent'],
      ['coordinator', 'init'],
      ['coordinator', 'start'],
      ['agent', 'enroll'],
      ['agent', 'start'],
      ['demo'],
    ]) {
      const r = loom([...cmd, '--help']);
      expect(r.status, cmd.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: loom/);
    }
    const group = loom(['coordinator', '--help']);
    expect(group.stdout).toMatch(/Usage: loom coordinator <command>/);
    expect(group.stdout).toMatch(/^ {2}init .*\n {2}start .*\n {2}admin-token /m);
    // A group without a command is a usage error that still shows what the group holds.
    const bare = loom(['agent']);
    expect(bare.status).not.toBe(0);
    expect(bare.stdout).toMatch(/enroll.*\n.*start/);
  });

  it('prints its version from package.json', () => {
    const text = loom(['--version']);
    expect(text.status).toBe(0);
    expect(text.stdout.trim()).toBe(`loom ${PACKAGE_VERSION}`);
    expect(JSON.parse(loom(['--version', '--json']).stdout)).toEqual({ version: PACKAGE_VERSION });
  });

  it('reports a bad invocation as one line with a code and a non-zero exit', () => {
    const missing = loom(['coordinator', 'init']);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/--data-dir is required.*LOOM_ERR_INVALID_ARGUMENT/);
    const unknown = loom(['coordinator', 'init', '--data-dir', join(dir, 'x'), '--bogus']);
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toMatch(/bogus/);
    expect(loom(['nonsense']).status).not.toBe(0);
    const badToken = loom([
      'agent',
      'enroll',
      '--coordinator',
      'https://127.0.0.1:1',
      '--token',
      'nope',
      '--data-dir',
      join(dir, 'y'),
    ]);
    expect(badToken.status).not.toBe(0);
    expect(badToken.stderr.trim().split('\n')).toHaveLength(1);
    expect(badToken.stderr).toMatch(/LOOM_ERR_TOKEN_INVALID/);
  });

  it('suggests the nearest option or command, and gives a negative number its range error', () => {
    const typo = loom(['coordinator', 'init', '--data-dri', join(dir, 'x')]);
    expectOneLineError(
      typo,
      /unknown option --data-dri; did you mean --data-dir\?.*LOOM_ERR_INVALID_ARGUMENT/,
    );
    expectOneLineError(loom(['agent', 'start', '--inference-prot', '1']), /did you mean --inference-port\?/);
    expectOneLineError(
      loom(['coordinator', 'strat']),
      /unknown command "coordinator strat"; did you mean "coordinator start"\?/,
    );
    const negative = loom(['demo', '--rounds', '-1']);
    expectOneLineError(
      negative,
      /--rounds must be a whole number from 1 to 1000 \[LOOM_ERR_INVALID_ARGUMENT\]/,
    );
    expect(negative.stderr).not.toMatch(/ambiguous/);
  });

  it('keeps the old --host of init working, with a line saying to use --cert-host', () => {
    const r = loom([
      'coordinator',
      'init',
      '--data-dir',
      join(dir, 'old-host'),
      '--host',
      'old.example',
      '--json',
    ]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^loom: warning: --host is deprecated .*use --cert-host$/m);
    expect(JSON.parse(r.stdout)).toMatchObject({ hosts: ['old.example'], removed: [] });
  });

  it('initialises, starts, enrolls and runs an agent, then shuts both down cleanly', async () => {
    const coordDir = join(dir, 'coord');
    const init = loom(['coordinator', 'init', '--data-dir', coordDir, '--cert-host', '127.0.0.1', '--json']);
    expect(init.status).toBe(0);
    const { adminToken, caFingerprint } = JSON.parse(init.stdout) as {
      adminToken: string;
      caFingerprint: string;
    };
    expect(adminToken).toMatch(/^loom_/);
    expect(caFingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(join(coordDir, 'pki', 'ca-key.pem'))).mode & 0o777).toBe(0o600);
    expect(loom(['coordinator', 'init', '--data-dir', coordDir]).stderr).toMatch(/LOOM_ERR_CONFLICT/);

    // Bound to every address: the URL it reports must still be one its certificate names.
    const coord = startCoordinatorProcess(coordDir, ['--bind', '0.0.0.0']);
    const agents: ReturnType<typeof startLoom>[] = [];
    try {
      const ready = (await coord.firstLine) as { apiUrl: string; apiPort: number; agentPort: number };
      expect(ready.apiUrl).toBe(`https://127.0.0.1:${ready.apiPort}`);
      expect(coord.stderr()).toMatch(
        new RegExp(`coordinator listening api=https://127\\.0\\.0\\.1:${ready.apiPort} `),
      );
      const api = ready.apiUrl;
      const { caCertificate } = await requestJson<{ caCertificate: string }>(`${api}/v1/ca`, {
        insecure: true,
      });
      const auth = { ca: caCertificate, headers: { authorization: `Bearer ${adminToken}` } };
      // The CA pins the certificate and the URL's host is checked against it: the URL is usable.
      await requestJson(`${api}/healthz`, auth);
      const newToken = async (): Promise<string> =>
        (await requestJson<{ token: string }>(`${api}/v1/enrollment-tokens`, { ...auth, body: {} })).token;
      const token = await newToken();

      const agentDir = join(dir, 'agent');
      const enrollArgs = (url: string, t: string, dataDir: string, ...extra: string[]): string[] => [
        'agent',
        'enroll',
        '--coordinator',
        url,
        '--token',
        t,
        '--data-dir',
        dataDir,
        ...extra,
      ];
      const enroll = loom(enrollArgs(api, token, agentDir, '--name', 'site-a', '--json'));
      expect(enroll.status).toBe(0);
      const first = JSON.parse(enroll.stdout) as { agentId: string };
      expect((await stat(join(agentDir, 'identity', 'agent-key.pem'))).mode & 0o777).toBe(0o600);
      // The token was one-time.
      const again = loom(enrollArgs(api, token, join(dir, 'agent2')));
      expect(again.stderr).toMatch(/LOOM_ERR_TOKEN_INVALID/);

      // None of these mistakes spends the token: each fails before it is sent.
      const second = await newToken();
      const [gatewayPort, wrongName, existing] = await Promise.all([
        loomAsync(enrollArgs(`https://127.0.0.1:${ready.agentPort}`, second, join(dir, 'agent3'))),
        loomAsync(enrollArgs(`https://localhost:${ready.apiPort}`, second, join(dir, 'agent3'))),
        loomAsync(enrollArgs(api, second, agentDir)),
      ]);
      expectOneLineError(
        gatewayPort,
        /asks for a client certificate: that is the coordinator's agent gateway port\. Enroll with the operator API port .*LOOM_ERR_NETWORK/,
      );
      expect(gatewayPort.stderr).not.toMatch(/alert|SSL|openssl/i);
      expectOneLineError(
        wrongName,
        /not valid for "localhost"; it names 127\.0\.0\.1: use one of those .*--cert-host.*LOOM_ERR_NETWORK/,
      );
      expectOneLineError(
        existing,
        new RegExp(
          `already holds the identity of agent ${first.agentId} \\("site-a" .*--force.*LOOM_ERR_CONFLICT`,
        ),
      );
      const otherDir = join(dir, 'agent-b');
      const [forced, otherEnroll] = await Promise.all([
        loomAsync(enrollArgs(api, second, agentDir, '--name', 'site-a', '--force', '--json')),
        loomAsync(enrollArgs(api, await newToken(), otherDir, '--name', 'site-b')),
      ]);
      expect(otherEnroll.status, otherEnroll.stderr).toBe(0);
      expect(forced.status, forced.stderr).toBe(0);
      const replaced = JSON.parse(forced.stdout) as { agentId: string; replaced: { agentId: string } };
      expect(replaced.replaced).toEqual({ agentId: first.agentId, name: 'site-a' });
      expect(replaced.agentId).not.toBe(first.agentId);
      expect(forced.stderr).toMatch(
        new RegExp(
          `replaced the identity of agent ${first.agentId} .*POST /v1/agents/${first.agentId}/revoke`,
        ),
      );
      const agentId = replaced.agentId;

      // IDX files without the MNIST names: the labels file is named with --labels.
      const mnist = await writeMnistSubset(agentDir, 0, 100);
      const data = join(agentDir, 'site-a.images');
      const labels = join(agentDir, 'site-a.classes');
      await rename(mnist, data);
      await rename(mnist.replace('images-idx3', 'labels-idx1'), labels);
      const agentStart = (dataDir: string, ...extra: string[]): string[] => [
        'agent',
        'start',
        '--data-dir',
        dataDir,
        '--data',
        data,
        '--labels',
        labels,
        ...extra,
      ];
      const agent = startLoom(agentStart(agentDir, '--inference-port', '0', '--json'));
      agents.push(agent);
      // Fails at its data, before it would reach the model store the agent above opens.
      const noLabels = await loomAsync(['agent', 'start', '--data-dir', agentDir, '--data', data]);
      expectOneLineError(noLabels, /cannot tell where its labels are.*--labels PATH.*LOOM_ERR_DATA/);
      const status = (await agent.firstLine) as { agentId: string; inferenceUrl: string; examples: number };
      expect(status).toMatchObject({ agentId, examples: 100 });
      await waitUntil(
        async () => {
          const { agents } = await requestJson<{ agents: { id: string; online: boolean; name: string }[] }>(
            `${api}/v1/agents`,
            auth,
          );
          return agents.some((a) => a.id === agentId && a.online && a.name === 'site-a');
        },
        20_000,
        'agent online',
      );
      const live = await requestJson<{ live: boolean }>(`${status.inferenceUrl}/v2/health/live`);
      expect(live.live).toBe(true);

      // A semicolon-separated CSV: refused at start naming the separator (below), loaded with
      // --csv-separator (after the agent stops).
      const csv = join(dir, 'site.csv');
      const header = ['label', ...Array.from({ length: 784 }, (_, i) => `px${i}`)].join(';');
      const rows = Array.from({ length: 20 }, (_, r) => [r % 10, ...Array(784).fill(0.5)].join(';'));
      await writeFile(csv, `${header}\n${rows.join('\n')}\n`);
      // A second agent on the same data dir, and another agent on the same inference port.
      const inferencePort = new URL(status.inferenceUrl).port;
      const [sameDir, samePort, semicolons] = await Promise.all([
        loomAsync(agentStart(agentDir, '--inference-port', '0')),
        loomAsync(agentStart(otherDir, '--inference-port', inferencePort)),
        loomAsync(['agent', 'start', '--data-dir', agentDir, '--data', csv]),
      ]);
      expectOneLineError(semicolons, /looks separated by ";", not ",".*--csv-separator ';'.*LOOM_ERR_DATA/);
      expectOneLineError(
        sameDir,
        /model store in .* is in use by another process — is an agent already running on this data dir\? .*LOOM_ERR_STORE_LOCKED/,
      );
      expectOneLineError(
        samePort,
        new RegExp(
          `inference server cannot listen on 127\\.0\\.0\\.1:${inferencePort}: the port is already in use .*--inference-port \\[LOOM_ERR_ADDRESS_IN_USE\\]`,
        ),
      );

      agent.child.kill('SIGTERM');
      expect(await exitOf(agent.child)).toBe(0);

      const csvAgent = startLoom([
        'agent',
        'start',
        '--data-dir',
        agentDir,
        '--data',
        csv,
        '--csv-separator',
        ';',
        '--inference-port',
        '0',
        '--json',
      ]);
      agents.push(csvAgent);
      expect(await csvAgent.firstLine).toMatchObject({ agentId, examples: 20 });
      csvAgent.child.kill('SIGTERM');
      expect(await exitOf(csvAgent.child), `${csvAgent.child.signalCode} ${csvAgent.stderr()}`).toBe(0);

      coord.child.kill('SIGINT');
      expect(await exitOf(coord.child)).toBe(0);
    } finally {
      for (const a of agents) a.child.kill('SIGKILL');
      coord.child.kill('SIGKILL');
    }
  }, 180_000);
});

/** Runs `loom` with extra environment variables (and without a token in the environment otherwise). */
function loomWithEnv(
  args: string[],
  env: Record<string, string>,
): { status: number | null; stdout: string; stderr: string } {
  const { LOOM_ENROLLMENT_TOKEN: _inherited, ...base } = process.env;
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...base, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('loom agent enroll token sources', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-cli-token-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const enroll = (extra: string[]): string[] => [
    'agent',
    'enroll',
    '--coordinator',
    'https://127.0.0.1:1',
    '--data-dir',
    join(dir, 'agent'),
    ...extra,
  ];

  it('documents --token-file and LOOM_ENROLLMENT_TOKEN in the help', () => {
    const r = loom(['agent', 'enroll', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--token-file/);
    expect(r.stdout).toMatch(/LOOM_ENROLLMENT_TOKEN/);
    expect(r.stdout).toMatch(/visible/);
  });

  it('reads the token from LOOM_ENROLLMENT_TOKEN when no token flag is given', () => {
    // A malformed token is refused before any network call, which shows it was the one read.
    const r = loomWithEnv(enroll([]), { LOOM_ENROLLMENT_TOKEN: 'from-env' });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/Malformed enrollment token.*LOOM_ERR_TOKEN_INVALID/);
  });

  it('reads the token from --token-file, ignoring surrounding whitespace', async () => {
    const file = join(dir, 'token');
    await writeFile(file, '\n  from-file  \n', { mode: 0o600 });
    const r = loomWithEnv(enroll(['--token-file', file]), {});
    expect(r.stderr).toMatch(/Malformed enrollment token.*LOOM_ERR_TOKEN_INVALID/);
  });

  it('refuses no token source, both flags, and a missing or empty file with one clear line', async () => {
    const none = loomWithEnv(enroll([]), {});
    expect(none.status).not.toBe(0);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(
      /an enrollment token is required: --token-file PATH, \$LOOM_ENROLLMENT_TOKEN or --token.*LOOM_ERR_INVALID_ARGUMENT/,
    );
    const both = loomWithEnv(enroll(['--token', 'a', '--token-file', join(dir, 'token')]), {});
    expect(both.stderr).toMatch(/give --token or --token-file, not both.*LOOM_ERR_INVALID_ARGUMENT/);
    const missing = loomWithEnv(enroll(['--token-file', join(dir, 'nope')]), {});
    expect(missing.stderr).toMatch(/cannot read --token-file .*nope.*LOOM_ERR_INVALID_ARGUMENT/);
    const emptyFile = join(dir, 'empty');
    await writeFile(emptyFile, '  \n');
    const empty = loomWithEnv(enroll(['--token-file', emptyFile]), {});
    expect(empty.stderr).toMatch(/--token-file .*empty is empty.*LOOM_ERR_INVALID_ARGUMENT/);
  });
});

describe('the Docker agent entrypoint', () => {
  const script = fileURLToPath(new URL('../../deploy/docker/agent-entrypoint.sh', import.meta.url));
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-entrypoint-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs the entrypoint from this checkout with only the given LOOM_* variables set. */
  function entrypoint(env: Record<string, string>): Run {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOOM_')));
    const r = spawnSync('sh', [script, '--data', join(dir, 'data.csv')], {
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        ...base,
        LOOM_HOME: fileURLToPath(new URL('../..', import.meta.url)),
        LOOM_DATA_DIR: join(dir, 'agent'),
        LOOM_COORDINATOR_URL: 'https://127.0.0.1:1',
        ...env,
      },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('passes the token to loom agent enroll in LOOM_ENROLLMENT_TOKEN, never as --token', async () => {
    const code = (await readFile(script, 'utf8')).split('\n').filter((l) => !l.trim().startsWith('#'));
    expect(code.filter((l) => l.includes('--token'))).toEqual([]);
    // A malformed token is refused before any network call, which shows it was the one read.
    const r = entrypoint({ LOOM_ENROLLMENT_TOKEN: 'from-the-environment' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Malformed enrollment token.*LOOM_ERR_TOKEN_INVALID/);
  });

  it('still reads the old LOOM_ENROLL_TOKEN, saying to rename it, and names the variable it needs', () => {
    const old = entrypoint({ LOOM_ENROLL_TOKEN: 'old-name' });
    expect(old.stderr).toMatch(/LOOM_ENROLL_TOKEN is deprecated; set LOOM_ENROLLMENT_TOKEN instead/);
    expect(old.stderr).toMatch(/Malformed enrollment token/);
    expect(entrypoint({}).stderr).toMatch(/LOOM_ENROLLMENT_TOKEN: is not set/);
  });
});

describe('loom coordinator init never destroys a coordinator by accident', () => {
  let dir: string;
  let coordDir: string;
  let firstFingerprint: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-cli-init-'));
    coordDir = join(dir, 'coord');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a data dir that holds a CA but no coordinator.json, naming what it found', async () => {
    const first = loom(['coordinator', 'init', '--data-dir', coordDir, '--json']);
    expect(first.status).toBe(0);
    firstFingerprint = (JSON.parse(first.stdout) as { caFingerprint: string }).caFingerprint;
    const caBefore = await readFile(join(coordDir, 'pki', 'ca-cert.pem'), 'utf8');
    // An init that stopped before its last step, or a coordinator.json deleted by hand.
    await rm(join(coordDir, 'coordinator.json'));
    const again = loom(['coordinator', 'init', '--data-dir', coordDir]);
    expectOneLineError(
      again,
      /holds part of a coordinator \(found pki\/ca-key\.pem, pki\/ca-cert\.pem, .*data\.key, db\/\).*--force.*restore .*coordinator\.json.*\[LOOM_ERR_CONFLICT\]/,
    );
    // Nothing was touched: the agents' pinned CA is still the one on disk.
    expect(await readFile(join(coordDir, 'pki', 'ca-cert.pem'), 'utf8')).toBe(caBefore);
  });

  it('with --force, lists what it deletes and what that loses, then starts over with a new CA', async () => {
    const forced = loom([
      'coordinator',
      'init',
      '--data-dir',
      coordDir,
      '--cert-host',
      'loom.example',
      '--force',
      '--json',
    ]);
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/--force: deleting the coordinator in /);
    expect(forced.stderr).toMatch(
      /pki\/ca-key\.pem +the CA key: every agent enrolled with this coordinator will have to enroll again/,
    );
    expect(forced.stderr).toMatch(/db\/ +the database: models .*audit log/);
    const result = JSON.parse(forced.stdout) as { caFingerprint: string; removed: string[] };
    expect(result.caFingerprint).not.toBe(firstFingerprint);
    expect(result.removed).toEqual([
      'pki/ca-key.pem',
      'pki/ca-cert.pem',
      'pki/server-key.pem',
      'pki/server-cert.pem',
      'data.key',
      'db/',
    ]);
    expect(forced.stderr).toMatch(
      /data\.key +the data key: every stored version of every model becomes unreadable/,
    );
    expect(JSON.parse(await readFile(join(coordDir, 'coordinator.json'), 'utf8'))).toEqual({
      hosts: ['loom.example'],
    });
  });

  it('refuses a complete coordinator and a folder holding only a database', async () => {
    expectOneLineError(
      loom(['coordinator', 'init', '--data-dir', coordDir]),
      /already holds a coordinator \(found coordinator\.json, pki\/ca-key\.pem, .*orphan every enrolled agent.*--force \[LOOM_ERR_CONFLICT\]/,
    );
    const dbOnly = join(dir, 'db-only');
    await mkdir(join(dbOnly, 'db'), { recursive: true });
    expectOneLineError(
      loom(['coordinator', 'init', '--data-dir', dbOnly]),
      /\(found db\/\).*LOOM_ERR_CONFLICT/,
    );
  });
});

describe('loom coordinator admin-token, and a coordinator that is running', () => {
  let dir: string;
  let coordDir: string;
  let coord: ReturnType<typeof startLoom> | undefined;
  let ready: { apiUrl: string; apiPort: number; agentPort: number };
  let adminToken: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-cli-admin-'));
    coordDir = join(dir, 'coord');
  });
  afterAll(async () => {
    coord?.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('prints help and refuses a folder that holds no coordinator', () => {
    const help = loom(['coordinator', 'admin-token', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: loom coordinator admin-token --data-dir DIR/);
    expect(loom(['--help']).stdout).toMatch(/coordinator admin-token/);
    const none = loom(['coordinator', 'admin-token', '--data-dir', join(dir, 'nothing')]);
    expect(none.status).not.toBe(0);
    expect(none.stderr).toMatch(/holds no coordinator.*LOOM_ERR_INVALID_CONFIG/);
  });

  it('makes a new admin token for a stopped coordinator', () => {
    expect(
      loom(['coordinator', 'init', '--data-dir', coordDir, '--cert-host', '127.0.0.1', '--json']).status,
    ).toBe(0);
    const made = loom([
      'coordinator',
      'admin-token',
      '--data-dir',
      coordDir,
      '--name',
      'break-glass',
      '--json',
    ]);
    expect(made.status).toBe(0);
    adminToken = (JSON.parse(made.stdout) as { adminToken: string }).adminToken;
    expect(Object.keys(JSON.parse(made.stdout))).toEqual(['adminToken']);
    expect(adminToken).toMatch(/^loom_[0-9a-f]{12}_[0-9a-f]{64}$/);
    const text = loom(['coordinator', 'admin-token', '--data-dir', coordDir]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/shown once/);
    expect(text.stdout).toMatch(/loom_[0-9a-f]{12}_[0-9a-f]{64}/);
  });

  it('starts with the old --host flag, saying to use --bind, and the new token works', async () => {
    coord = startCoordinatorProcess(coordDir, ['--host', '127.0.0.1']);
    ready = (await coord.firstLine) as typeof ready;
    expect(coord.stderr()).toMatch(/^loom: warning: --host is deprecated .*use --bind$/m);
    expect(ready.apiUrl).toBe(`https://127.0.0.1:${ready.apiPort}`);
    const { caCertificate } = await requestJson<{ caCertificate: string }>(`${ready.apiUrl}/v1/ca`, {
      insecure: true,
    });
    const auth = { ca: caCertificate, headers: { authorization: `Bearer ${adminToken}` } };
    const { tokens } = await requestJson<{ tokens: { name: string; role: string }[] }>(
      `${ready.apiUrl}/v1/tokens`,
      auth,
    );
    expect(tokens.map((t) => `${t.role} ${t.name}`).sort()).toEqual([
      'admin break-glass',
      'admin initial admin',
      'admin recovery admin',
    ]);
    const { entries } = await requestJson<{ entries: { action: string; details?: { name?: string } }[] }>(
      `${ready.apiUrl}/v1/audit`,
      auth,
    );
    expect(entries.filter((e) => e.action === 'api-token.create').map((e) => e.details?.name)).toEqual([
      'initial admin',
      'break-glass',
      'recovery admin',
    ]);
  });

  it('refuses an admin token, a second start and a forced init on its data dir: the database is in use', async () => {
    const inUse =
      /the database in .*db is in use by another process — is a coordinator already running on this data dir\? Stop it first \[LOOM_ERR_STORE_LOCKED\]/;
    const [token, start, init] = await Promise.all([
      loomAsync(['coordinator', 'admin-token', '--data-dir', coordDir]),
      loomAsync(['coordinator', 'start', '--data-dir', coordDir, '--api-port', '0', '--agent-port', '0']),
      loomAsync(['coordinator', 'init', '--data-dir', coordDir, '--force']),
    ]);
    expectOneLineError(token, inUse);
    expectOneLineError(start, inUse);
    expectOneLineError(init, inUse);
    // The forced init deleted nothing.
    expect((await stat(join(coordDir, 'pki', 'ca-key.pem'))).isFile()).toBe(true);
  });

  it('names the taken port, and the flag to change it, when another coordinator holds it', async () => {
    const otherDir = join(dir, 'other');
    expect(loom(['coordinator', 'init', '--data-dir', otherDir, '--json']).status).toBe(0);
    const start = (extra: string[]): Promise<Run> =>
      loomAsync(['coordinator', 'start', '--data-dir', otherDir, '--bind', '127.0.0.1', ...extra]);
    const api = await start(['--api-port', String(ready.apiPort), '--agent-port', '0']);
    expectOneLineError(
      api,
      new RegExp(
        `operator API cannot listen on 127\\.0\\.0\\.1:${ready.apiPort}: the port is already in use \\(is another coordinator running\\?\\); stop it, or choose another port with --api-port \\(or LOOM_API_PORT\\) \\[LOOM_ERR_ADDRESS_IN_USE\\]`,
      ),
    );
    const gateway = await start(['--api-port', '0', '--agent-port', String(ready.agentPort)]);
    expectOneLineError(
      gateway,
      new RegExp(
        `agent gateway cannot listen on 127\\.0\\.0\\.1:${ready.agentPort}: the port is already in use .*--agent-port \\(or LOOM_AGENT_PORT\\) \\[LOOM_ERR_ADDRESS_IN_USE\\]`,
      ),
    );
  });

  it('stops cleanly, and a re-init never wipes its used database when coordinator.json goes missing', async () => {
    coord!.child.kill('SIGINT');
    expect(await exitOf(coord!.child)).toBe(0);
    await rm(join(coordDir, 'coordinator.json'));
    const reinit = loom(['coordinator', 'init', '--data-dir', coordDir]);
    expectOneLineError(reinit, /holds part of a coordinator \(found .*db\/\).*restore .*LOOM_ERR_CONFLICT/);
  });
});

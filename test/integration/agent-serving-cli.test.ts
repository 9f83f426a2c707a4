// `loom agent api-key` and the inference flags of `loom agent start`, as a site admin runs them:
// real processes, a real coordinator to enroll with, keys changed while the agent runs.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueServerCert } from '../../certs/index.ts';
import { openLocalModelStore } from '../../edge-agent/store/index.ts';
import { initialWeights, type ModelArchitecture } from '../../shared/models/index.ts';
import { startTestCluster, type TestCluster, waitUntil, writeMnistSubset } from '../helpers/cluster.ts';
import { sendBody } from '../helpers/http-body.ts';

const CLI = fileURLToPath(new URL('../../cli/loom.js', import.meta.url));
const ARCH: ModelArchitecture = { kind: 'logistic', inputShape: [4], classes: 3 };
const INFER = JSON.stringify({
  inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
});

/**
 * Runs the CLI without blocking this process: a blocked event loop would leave fetch a pooled
 * keep-alive socket the agent has since closed.
 */
function loom(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

interface Started {
  child: ChildProcess;
  ready: Promise<{ inferenceUrl: string }>;
  stderr: () => string;
}

function startAgent(args: string[]): Started {
  const child = spawn(process.execPath, [CLI, 'agent', 'start', ...args, '--inference-port', '0', '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const ready = new Promise<{ inferenceUrl: string }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', (code) => reject(new Error(`agent exited ${code}: ${err}`)));
  });
  return { child, ready, stderr: () => err };
}

async function stopAgent(agent: Started): Promise<number | null> {
  if (agent.child.exitCode !== null) return agent.child.exitCode;
  const exited = new Promise<number | null>((resolve) => agent.child.once('exit', (code) => resolve(code)));
  agent.child.kill('SIGTERM');
  return exited;
}

async function infer(base: string, key?: string): Promise<number> {
  const res = await fetch(`${base}/v2/models/iris/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: INFER,
  });
  await res.body?.cancel();
  return res.status;
}

describe('loom agent api-key and the inference flags of loom agent start', () => {
  let cluster: TestCluster;
  const started: Started[] = [];

  /** An enrolled data dir whose store already holds `iris`, and its training data. */
  async function site(name: string): Promise<{ dataDir: string; dataPath: string }> {
    const { dataDir } = await cluster.enroll(name);
    const dataPath = await writeMnistSubset(dataDir, 0, 20);
    const store = await openLocalModelStore(dataDir);
    await store.put({
      name: 'iris',
      version: 1,
      architecture: ARCH,
      weights: (await initialWeights(ARCH)).weights,
    });
    await store.close();
    return { dataDir, dataPath };
  }

  beforeAll(async () => {
    cluster = await startTestCluster();
  });

  afterAll(async () => {
    await Promise.all(started.map(stopAgent));
    await cluster?.close();
  });

  it('prints help for each api-key command', async () => {
    for (const sub of ['create', 'list', 'revoke']) {
      const r = await loom(['agent', 'api-key', sub, '--help']);
      expect(r.status, sub).toBe(0);
      expect(r.stdout).toContain(`loom agent api-key ${sub}`);
    }
    expect((await loom(['agent', 'api-key'])).status).toBe(2);
  });

  it('warns beyond loopback without a key, and applies keys made and revoked while the agent runs', async () => {
    const { dataDir, dataPath } = await site('open-site');
    const agent = startAgent(['--data-dir', dataDir, '--data', dataPath, '--inference-host', '0.0.0.0']);
    started.push(agent);
    const base = (await agent.ready).inferenceUrl.replace('0.0.0.0', '127.0.0.1');
    await waitUntil(() => agent.stderr().includes('NEEDS NO API KEY'), 20_000, 'the warning');
    expect(await infer(base)).toBe(200);

    const created = await loom([
      'agent',
      'api-key',
      'create',
      '--data-dir',
      dataDir,
      '--name',
      'app',
      '--json',
    ]);
    expect(created.status).toBe(0);
    const { id, key } = JSON.parse(created.stdout) as { id: string; key: string };
    await waitUntil(async () => (await infer(base)) === 401, 20_000, 'the agent to require the key');
    expect(await infer(base, key)).toBe(200);

    const listed = await loom(['agent', 'api-key', 'list', '--data-dir', dataDir, '--json']);
    expect(listed.status).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual({
      keys: [{ id, name: 'app', createdAt: expect.any(String), revoked: false }],
    });
    expect(listed.stdout).not.toContain(key.split('_')[2]);
    const table = await loom(['agent', 'api-key', 'list', '--data-dir', dataDir]);
    expect(table.stdout).toMatch(new RegExp(`^${id}\\s+app\\s+\\S+\\s+no$`, 'm'));

    const revoked = await loom(['agent', 'api-key', 'revoke', id, '--data-dir', dataDir]);
    expect(revoked.status).toBe(0);
    await waitUntil(
      async () => (await infer(base, key)) === 401,
      20_000,
      'the agent to refuse the revoked key',
    );
    expect(await infer(base)).toBe(401);
    expect((await fetch(`${base}/v2/health/ready`)).status).toBe(200);

    const unknown = await loom(['agent', 'api-key', 'revoke', 'ffffffffffff', '--data-dir', dataDir]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toContain('LOOM_ERR_NOT_FOUND');
    expect(await stopAgent(agent)).toBe(0);
  });

  it('serves HTTPS with the certificate given, requires a key with --require-api-key, and wants both TLS files', async () => {
    const { dataDir, dataPath } = await site('tls-site');
    const ca = createCA({ commonName: 'Site CA' });
    const pair = issueServerCert(ca, { hosts: ['127.0.0.1'] });
    const certPath = join(dataDir, 'inference-cert.pem');
    const keyPath = join(dataDir, 'inference-key.pem');
    await writeFile(certPath, pair.certPem);
    await writeFile(keyPath, pair.keyPem);

    const half = await loom([
      'agent',
      'start',
      '--data-dir',
      dataDir,
      '--data',
      dataPath,
      '--inference-tls-cert',
      certPath,
    ]);
    expect(half.status).toBe(1);
    expect(half.stderr.trim().split('\n')).toHaveLength(1);
    expect(half.stderr).toMatch(
      /--inference-tls-cert and --inference-tls-key together.*LOOM_ERR_INVALID_ARGUMENT/,
    );

    const agent = startAgent([
      '--data-dir',
      dataDir,
      '--data',
      dataPath,
      '--inference-tls-cert',
      certPath,
      '--inference-tls-key',
      keyPath,
      '--require-api-key',
    ]);
    started.push(agent);
    const { inferenceUrl } = await agent.ready;
    expect(inferenceUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const refused = await sendBody(`${inferenceUrl}/v2/models/iris/infer`, INFER, {
      framing: 'length',
      ca: ca.certPem,
    });
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.text)).toMatchObject({ code: 'LOOM_ERR_UNAUTHORIZED' });
    const ready = await sendBody(`${inferenceUrl}/v2/health/ready`, '', {
      method: 'GET',
      framing: 'length',
      ca: ca.certPem,
    });
    expect(ready.status).toBe(200);

    const { key } = JSON.parse(
      (await loom(['agent', 'api-key', 'create', '--data-dir', dataDir, '--json'])).stdout,
    ) as {
      key: string;
    };
    await waitUntil(
      async () =>
        (
          await sendBody(`${inferenceUrl}/v2/models/iris/infer`, INFER, {
            framing: 'chunked',
            ca: ca.certPem,
            headers: { authorization: `Bearer ${key}` },
          })
        ).status === 200,
      20_000,
      'the key to be accepted over HTTPS',
    );
    expect(await stopAgent(agent)).toBe(0);
  });
});

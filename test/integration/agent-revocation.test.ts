// What a revoked agent does, through a real coordinator: it stops serving predictions (or keeps
// serving with a loud status when the site asked for that), says so in ready and in its
// status, stays revoked across a restart, and only enrolling again clears it.
import { access, cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateInfo } from '../../certs/index.ts';
import { EdgeAgent, loadIdentity } from '../../edge-agent/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { startTestCluster, type TestCluster, waitUntil, writeMnistSubset } from '../helpers/cluster.ts';

const DIGITS: ModelArchitecture = { kind: 'mlp', inputShape: [784], layers: [16, 10], activation: 'relu' };

interface Reply {
  status: number;
  agentStatus: string | null;
  json: Record<string, unknown>;
}

async function call(agent: EdgeAgent, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${agent.status().inferenceUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return {
    status: res.status,
    agentStatus: res.headers.get('loom-agent-status'),
    json: (await res.json()) as Record<string, unknown>,
  };
}

const infer = (agent: EdgeAgent) =>
  call(agent, '/v2/models/digits/infer', {
    inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0) }],
  });

/** A logger that keeps its JSON lines. */
function recordingLog() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger({ format: 'json', write: (l) => lines.push(JSON.parse(l)) }) };
}

describe('a revoked agent', () => {
  let cluster: TestCluster;
  const running: EdgeAgent[] = [];

  async function start(
    dataDir: string,
    opts: { serveWhenRevoked?: boolean; log?: ReturnType<typeof createLogger> } = {},
  ) {
    const dataPath = join(dataDir, 'train-images-idx3-ubyte');
    await access(dataPath).catch(() => writeMnistSubset(dataDir, 0, 20));
    const agent = new EdgeAgent({
      dataDir,
      dataPath,
      inferencePort: 0,
      log: opts.log ?? createLogger('silent'),
      ...(opts.serveWhenRevoked ? { serveWhenRevoked: true } : {}),
    });
    running.push(agent);
    await agent.start();
    return agent;
  }

  async function stop(agent: EdgeAgent): Promise<void> {
    running.splice(running.indexOf(agent), 1);
    await agent.stop();
  }

  /** Starts an agent, waits until it serves `digits`, and returns it with its id. */
  async function servingAgent(name: string, opts: { serveWhenRevoked?: boolean } = {}) {
    const { dataDir, agentId } = await cluster.enroll(name);
    const agent = await start(dataDir, opts);
    await waitUntil(
      () => agent.status().models.some((m) => m.name === 'digits'),
      20_000,
      `${name} to get digits`,
    );
    expect((await infer(agent)).status).toBe(200);
    return { agent, agentId, dataDir };
  }

  const revoke = (agentId: string) => cluster.api(`/v1/agents/${agentId}/revoke`, {}, 'POST');

  beforeAll(async () => {
    cluster = await startTestCluster();
    await cluster.api('/v1/models', { name: 'digits', architecture: DIGITS });
    await cluster.coordinator.deployments.deploy('digits', 1);
  });

  afterAll(async () => {
    await Promise.all(running.map((a) => a.stop().catch(() => undefined)));
    await cluster?.close();
  });

  it('stops serving, says so in ready and status, and stays revoked after a restart', async () => {
    const { agent, agentId, dataDir } = await servingAgent('revoked-site');
    await revoke(agentId);
    await waitUntil(() => agent.status().revoked, 20_000, 'the agent to learn of its revocation');

    const check = async (a: EdgeAgent) => {
      expect(a.status()).toMatchObject({ agentId, revoked: true, serving: false, connected: false });
      expect(a.status().revokedAt).toEqual(expect.any(String));
      const ready = await call(a, '/v2/health/ready');
      expect(ready).toEqual({
        status: 503,
        agentStatus: 'revoked',
        json: { ready: false, reason: 'revoked', revoked: true, revokedAt: a.status().revokedAt },
      });
      const answer = await infer(a);
      expect(answer.status).toBe(503);
      expect(answer.agentStatus).toBe('revoked');
      expect(answer.json.code).toBe('LOOM_ERR_CERT_REVOKED');
      expect((await call(a, '/v2/models/digits/ready')).status).toBe(503);
      // Liveness is not readiness: the process is fine.
      expect((await call(a, '/v2/health/live')).status).toBe(200);
    };
    await check(agent);

    await stop(agent);
    const { lines, log } = recordingLog();
    const restarted = await start(dataDir, { log });
    await check(restarted);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'error',
        code: 'LOOM_ERR_CERT_REVOKED',
        msg: expect.stringMatching(/revoked/),
      }),
    );
    // It knew before dialling: nothing from its coordinator link at all.
    expect(lines.filter((l) => String(l.component ?? '').endsWith('link'))).toEqual([]);

    // Enrolling the data dir again gives a new identity, and the revocation is gone with the old one.
    await stop(restarted);
    const again = await cluster.enroll('revoked-site', { force: true });
    expect(again.dataDir).toBe(dataDir);
    const fresh = await start(dataDir);
    expect(fresh.status()).toMatchObject({ agentId: again.agentId, revoked: false, serving: true });
    const ready = await call(fresh, '/v2/health/ready');
    expect(ready).toEqual({ status: 200, agentStatus: null, json: { ready: true } });
    await waitUntil(() => fresh.status().connected, 20_000, 'the re-enrolled agent to connect');
    await expect(access(join(dataDir, 'revocation.json'))).rejects.toThrow();
  });

  it('learns of a revocation made while it was offline when its connection is refused', async () => {
    const { agent, agentId, dataDir } = await servingAgent('offline-site');
    await stop(agent);
    await revoke(agentId);
    const back = await start(dataDir);
    await waitUntil(() => back.status().revoked, 20_000, 'the refused upgrade to tell it');
    expect(back.status()).toMatchObject({ revoked: true, serving: false, connected: false });
    expect((await infer(back)).json.code).toBe('LOOM_ERR_CERT_REVOKED');
    // The status changes at once; the record is written to disk just after it.
    await waitUntil(
      () =>
        access(join(dataDir, 'revocation.json')).then(
          () => true,
          () => false,
        ),
      20_000,
      'the revocation record on disk',
    );
  });

  it('keeps serving with a loud status when the site chose --serve-when-revoked', async () => {
    const { agent, agentId } = await servingAgent('stubborn-site', { serveWhenRevoked: true });
    await revoke(agentId);
    await waitUntil(() => agent.status().revoked, 20_000, 'the agent to learn of its revocation');
    expect(agent.status()).toMatchObject({ revoked: true, serving: true });
    const answer = await infer(agent);
    expect(answer.status).toBe(200);
    expect(answer.agentStatus).toBe('revoked');
    const ready = await call(agent, '/v2/health/ready');
    expect(ready).toEqual({
      status: 200,
      agentStatus: 'revoked',
      json: { ready: true, revoked: true, revokedAt: agent.status().revokedAt },
    });
  });

  it('does not take a refusal of a superseded certificate for a revocation', async () => {
    const { agent, agentId, dataDir } = await servingAgent('renewed-site');
    // A copy of the identity as it is before the renewal: the old certificate.
    const copyDir = join(cluster.dir, 'agents', 'renewed-copy');
    await mkdir(copyDir, { recursive: true });
    await cp(join(dataDir, 'identity'), join(copyDir, 'identity'), { recursive: true });
    const old = certificateInfo((await loadIdentity(dataDir)).certPem);
    await agent.renewIfDue(new Date(old.notAfter.getTime() - 60_000));
    const renewed = certificateInfo((await loadIdentity(dataDir)).certPem);
    await waitUntil(
      async () => (await cluster.coordinator.agents.get(agentId)).certSerial === renewed.serial.toLowerCase(),
      20_000,
      'the renewed certificate to be in use',
    );

    const { lines, log } = recordingLog();
    const copy = await start(copyDir, { log });
    await waitUntil(
      () => lines.some((l) => l.msg === 'coordinator link ended'),
      20_000,
      'the coordinator to refuse the old certificate',
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'coordinator link ended', code: 'LOOM_ERR_UNAUTHORIZED' }),
    );
    expect(copy.status()).toMatchObject({ revoked: false, serving: true });
    await expect(access(join(copyDir, 'revocation.json'))).rejects.toThrow();
    expect((await call(copy, '/v2/health/ready')).agentStatus).toBeNull();
    // The agent itself is untouched.
    expect(agent.status()).toMatchObject({ revoked: false, serving: true });
  });
});

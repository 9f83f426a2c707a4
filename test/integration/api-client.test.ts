// The typed operator API client against a real coordinator (TLS with its own CA, LevelDB in a temp
// folder, an MNIST agent): every route, errors as LoomErrors with the server's code, CA pinning,
// the job event stream, and guards that keep the client's types from drifting from the server.
import { readdir, readFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentView,
  type ApiTokenView,
  caFingerprintOf,
  type Health,
  type JobStreamMessage,
  LoomClient,
  parseServerSentEvents,
  resolveConnection,
} from '../../shared/api-client/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';

/** Every field the client's types declare, tied to the types: a field added to one must be listed. */
const AGENT_FIELDS = {
  id: true,
  name: true,
  online: true,
  lastSeen: true,
  connectedAt: true,
  remoteAddress: true,
  backend: true,
  agentVersion: true,
  examples: true,
  revoked: true,
  revokedAt: true,
  enrolledAt: true,
  certNotAfter: true,
  models: true,
  labels: true,
} satisfies Record<keyof AgentView, true>;
const TOKEN_FIELDS = { id: true, name: true, role: true, createdAt: true, revoked: true } satisfies Record<
  Exclude<keyof ApiTokenView, 'revokedAt'>,
  true
>;
const HEALTH_FIELDS = {
  status: true,
  backend: true,
  agentsConnected: true,
  agentPort: true,
} satisfies Record<keyof Health, true>;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isLoomError(err)) return err.code;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('LoomClient', () => {
  let cluster: TestCluster;
  let client: LoomClient;
  let fingerprint: string;

  beforeAll(async () => {
    cluster = await startTestCluster();
    fingerprint = caFingerprintOf(cluster.caPem);
    client = new LoomClient(
      { url: cluster.apiUrl, token: cluster.adminToken, caFingerprint: fingerprint },
      {},
    );
    await cluster.startAgent('site-a', { offset: 0, count: 100 });
    await cluster.waitForAgents(1);
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it('settles the connection from options, then LOOM_* variables, and says what is missing', () => {
    const env = {
      LOOM_URL: `${cluster.apiUrl}/ignored/path`,
      LOOM_TOKEN: 't',
      LOOM_CA_FINGERPRINT: fingerprint.toUpperCase(),
    };
    expect(resolveConnection({}, env)).toMatchObject({
      url: cluster.apiUrl,
      token: 't',
      caFingerprint: fingerprint,
    });
    expect(resolveConnection({ token: 'flag', caFile: '/ca.pem' }, env)).toMatchObject({
      token: 'flag',
      caFile: '/ca.pem',
    });
    expect(() => resolveConnection({}, {})).toThrow(/LOOM_URL/);
    expect(() => resolveConnection({ url: 'http://x:1', caFingerprint: fingerprint }, {})).toThrow(/HTTPS/);
    expect(() => resolveConnection({ url: cluster.apiUrl }, {})).toThrow(/no CA to trust/);
    expect(() => resolveConnection({ url: cluster.apiUrl, caFingerprint: 'abc' }, {})).toThrow(
      /--ca-fingerprint must be/,
    );
  });

  it('pins the CA by fingerprint or file, and refuses a coordinator whose CA differs', async () => {
    expect(await client.caCertificate()).toBe(cluster.caPem);
    const byFile = new LoomClient(
      {
        url: cluster.apiUrl,
        token: cluster.adminToken,
        caFile: join(cluster.dir, 'coordinator', 'pki', 'ca-cert.pem'),
      },
      {},
    );
    expect((await byFile.health()).status).toBe('ok');
    const wrong = new LoomClient(
      { url: cluster.apiUrl, token: cluster.adminToken, caFingerprint: 'cd'.repeat(32) },
      {},
    );
    expect(await codeOf(wrong.listModels())).toBe('LOOM_ERR_CA_MISMATCH');
  });

  it('calls every route and returns what the server answers, in the shapes its types declare', async () => {
    const health = await client.health();
    expect(Object.keys(health).sort()).toEqual(Object.keys(HEALTH_FIELDS).sort());
    expect((await client.ca()).fingerprint).toBe(fingerprint);
    expect((await client.createEnrollmentToken({ ttlSec: 60 })).token).toMatch(/^loom1\./);

    const created = await client.createModel({
      name: 'digits',
      architecture: { kind: 'mlp', inputShape: [784], layers: [8, 10] },
    });
    expect(created).toMatchObject({ name: 'digits', latestVersion: 1, version: { version: 1 } });
    expect((await client.listModels()).models.map((m) => m.name)).toEqual(['digits']);
    expect(await client.getModel('digits')).toMatchObject({ name: 'digits', deployedVersion: null });
    expect((await client.listVersions('digits')).versions).toHaveLength(1);
    const version = await client.getVersion('digits', 1);
    const artifact = await client.getArtifact('digits', 1);
    expect(artifact.weightsManifest[0].paths).toEqual(['artifact/weights.bin']);
    const weights = await client.getWeights('digits', 1);
    expect(weights.length).toBe(version.paramCount * 4);

    const { agents } = await client.listAgents({ online: true });
    expect(agents).toHaveLength(1);
    for (const key of Object.keys(AGENT_FIELDS)) expect(agents[0]).toHaveProperty(key);
    expect((await client.getAgent(agents[0].id)).name).toBe('site-a');

    const token = await client.createToken({ name: 'reader', role: 'viewer' });
    const listed = (await client.listTokens({ role: 'viewer' })).tokens;
    expect(listed.map((t) => t.id)).toEqual([token.id]);
    for (const key of Object.keys(TOKEN_FIELDS)) expect(listed[0]).toHaveProperty(key);
    expect(listed[0]).not.toHaveProperty('hash');

    const all: string[] = [];
    for await (const t of client.pages(
      (after) => client.listTokens({ limit: 1, ...(after ? { after } : {}) }),
      (p) => p.tokens,
    ))
      all.push(t.id);
    expect(all).toHaveLength(2);

    const audit = await client.audit({ action: 'model.create' });
    expect(audit.chain.ok).toBe(true);
    expect(audit.entries.map((e) => e.target)).toEqual(['digits']);
    expect(await client.revocations()).toEqual({ agents: {}, serials: [] });
  });

  it("turns an error answer into a LoomError with the server's code", async () => {
    const viewerToken = (await client.createToken({ name: 'viewer', role: 'viewer' })).token;
    const viewer = new LoomClient(
      { url: cluster.apiUrl, token: viewerToken, caFingerprint: fingerprint },
      {},
    );
    const anonymous = new LoomClient({ url: cluster.apiUrl, caFingerprint: fingerprint }, {});
    const admins = (await client.listTokens({ role: 'admin' })).tokens;
    const [missing, forbidden, unauthorized, invalid, lastAdmin] = await Promise.all([
      codeOf(client.getModel('nope')),
      codeOf(viewer.createJob({ model: 'digits' })),
      codeOf(anonymous.listModels()),
      codeOf(client.createJob({ model: 'digits', rounds: 0 })),
      codeOf(client.revokeToken(admins[0].id)),
    ]);
    expect([missing, forbidden, unauthorized, invalid, lastAdmin]).toEqual([
      'LOOM_ERR_NOT_FOUND',
      'LOOM_ERR_FORBIDDEN',
      'LOOM_ERR_UNAUTHORIZED',
      'LOOM_ERR_INVALID_ARGUMENT',
      'LOOM_ERR_CONFLICT',
    ]);
    // A viewer may read: the listing works with its token.
    expect((await viewer.listJobs()).jobs).toBeDefined();
  });

  it('streams a job from its snapshot to its end, and resumes after a seq it already has', async () => {
    const job = await client.createJob({ model: 'digits', rounds: 1, minClients: 1 });
    const messages: JobStreamMessage[] = [];
    for await (const m of client.jobEvents(job.id)) messages.push(m);
    expect(messages[0].event).toBe('snapshot');
    expect(messages.at(-1)).toMatchObject({ event: 'job-finished', data: { state: 'completed' } });
    expect(messages.map((m) => m.event)).toContain('update-received');
    const ids = messages.flatMap((m) => (m.event !== 'snapshot' && m.id !== undefined ? [m.id] : []));
    const resumed: JobStreamMessage[] = [];
    for await (const m of client.jobEvents(job.id, { after: ids[1] })) resumed.push(m);
    expect(resumed[0].event).toBe('snapshot');
    const resumedIds = resumed.flatMap((m) => (m.event !== 'snapshot' && m.id !== undefined ? [m.id] : []));
    expect(resumedIds[0]).toBe(ids[2]);
    expect(
      await codeOf(
        (async () => {
          for await (const _ of client.jobEvents('job-nope')) break;
        })(),
      ),
    ).toBe('LOOM_ERR_NOT_FOUND');
    expect((await client.cancelJob(job.id).catch((e: unknown) => e)) as Error).toMatchObject({
      code: 'LOOM_ERR_CONFLICT',
    });
  });
  it('opens a dropped event stream again from the last event it delivered', async () => {
    // A TCP relay in front of the API (TLS passes through it untouched) whose connections are cut.
    const sockets = new Set<Socket>();
    const relay = createServer((inbound) => {
      const outbound = connect(Number(new URL(cluster.apiUrl).port), '127.0.0.1');
      for (const s of [inbound, outbound]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const port = (relay.address() as { port: number }).port;
      const viaRelay = new LoomClient(
        { url: `https://127.0.0.1:${port}`, token: cluster.adminToken, caPem: cluster.caPem },
        {},
      );
      const job = await client.createJob({ model: 'digits', rounds: 2, minClients: 1 });
      const messages: JobStreamMessage[] = [];
      let cut = false;
      for await (const m of viaRelay.jobEvents(job.id)) {
        messages.push(m);
        if (!cut && m.event === 'update-received') {
          cut = true;
          for (const s of sockets) s.destroy();
        }
      }
      expect(cut).toBe(true);
      expect(messages.filter((m) => m.event === 'snapshot')).toHaveLength(2);
      expect(messages.at(-1)).toMatchObject({ event: 'job-finished', data: { state: 'completed' } });
      // Every event once, in order, none lost across the cut.
      const ids = messages.flatMap((m) => (m.event !== 'snapshot' && m.id !== undefined ? [m.id] : []));
      expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => ids[0] + i));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });
});

describe('parseServerSentEvents', () => {
  it('reads events split anywhere, with CRLF, comments and data on several lines', async () => {
    const wire =
      ': keep-alive\r\n\r\nevent: snapshot\r\ndata: {"a":\r\ndata: 1}\r\n\r\nid: 7\nevent: round-started\ndata: {}\n\n';
    const chunks = wire.match(/[\s\S]{1,5}/g)!.map((c) => Buffer.from(c));
    const events = [];
    for await (const e of parseServerSentEvents(Readable.from(chunks))) events.push(e);
    expect(events).toEqual([
      { event: 'snapshot', data: '{"a":\n1}' },
      { event: 'round-started', data: '{}', id: '7' },
    ]);
  });
});

describe('shared/api-client', () => {
  it('takes only types from the coordinator, so loading the client loads none of it', async () => {
    const dir = new URL('../../shared/api-client/', import.meta.url);
    for (const file of await readdir(dir)) {
      const text = await readFile(new URL(file, dir), 'utf8');
      for (const m of text.matchAll(/^(import|export)\s+(type\s+)?[^;]*?from '([^']+)'/gms)) {
        if (m[3].includes('/coordinator/')) expect(m[2], `${file}: ${m[0]}`).toBe('type ');
      }
    }
  });
});

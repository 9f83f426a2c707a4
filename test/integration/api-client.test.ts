// The typed operator API client against a real coordinator (TLS with its own CA, LevelDB in a temp
// folder, an MNIST agent): every route, errors as LoomErrors with the server's code, CA pinning,
// the job event stream, and guards that keep the client's types from drifting from the server.
import { readdir, readFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
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
import * as schemas from '../../shared/api-schemas/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';

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

/**
 * `value` as the response schema declares it: it parses, and (for an object schema) has no field
 * the schema does not name, so the published document says what the server really answers.
 */
function expectConforms(schema: z.ZodType, value: unknown, what: string): void {
  const result = schema.safeParse(value);
  expect(result.success, `${what}: ${JSON.stringify(result.error?.issues.slice(0, 3))}`).toBe(true);
  if (schema instanceof z.ZodObject && value && typeof value === 'object') {
    const known = Object.keys(schema.shape);
    expect(
      Object.keys(value).filter((k) => !known.includes(k)),
      what,
    ).toEqual([]);
  }
}

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
  it('calls the lifecycle, evaluation, rollout, retirement and label routes, and reads the OpenAPI document', async () => {
    // The job of the test before wrote version 2.
    const doc = await client.openApi();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/rollouts', '/v1/models/{name}/policy']),
    );

    const [agent] = (await client.listAgents()).agents;
    expect((await client.setAgentLabels(agent.id, { site: 'a', tier: 'edge' })).labels).toEqual({
      site: 'a',
      tier: 'edge',
    });
    expect((await client.patchAgentLabels(agent.id, { tier: null, region: 'eu' })).labels).toEqual({
      site: 'a',
      region: 'eu',
    });
    expect((await client.listAgents({ label: 'region=eu' })).agents.map((a) => a.id)).toEqual([agent.id]);

    expect((await client.updateVersion('digits', 2, { description: 'first round' })).description).toBe(
      'first round',
    );
    expect((await client.setTags('digits', 2, { data: 'mnist' })).tags).toEqual({ data: 'mnist' });
    expect(await client.setPolicy('digits', { metric: 'accuracy', min: 0 })).toEqual({
      policy: { metric: 'accuracy', min: 0 },
    });
    expect((await client.getPolicy('digits')).policy).toEqual({ metric: 'accuracy', min: 0 });
    expect(await client.setAlias('digits', 'champion', 2)).toMatchObject({ alias: 'champion', version: 2 });
    expect((await client.listAliases('digits')).aliases.map((a) => a.alias)).toEqual(['champion']);
    expect((await client.getVersion('digits', 'champion')).version).toBe(2);
    await client.deleteAlias('digits', 'champion');
    expect((await client.listAliases('digits')).aliases).toEqual([]);

    const started = await client.startEvaluation('digits', 2, { agents: [agent.id], timeoutSec: 60 });
    expect(started.state).toBe('running');
    await waitUntil(
      async () => (await client.getEvaluation('digits', started.id)).state !== 'running',
      30_000,
      'the evaluation to end',
    );
    const evaluation = await client.getEvaluation('digits', started.id);
    expect(evaluation).toMatchObject({ state: 'completed', results: [{ agentId: agent.id }] });
    const evaluations = await client.listEvaluations('digits', { version: 2 });
    // Newest first: this one, then the one the job ran on its final version.
    expect(evaluations.evaluations[0].id).toBe(started.id);
    expect(evaluations.matrix.versions.map((v) => v.version)).toEqual([2]);
    expect((await client.setStage('digits', 2, { stage: 'staging' })).stage).toBe('staging');

    // A health window of an hour keeps the first wave running while the actions are tried.
    const rollout = await client.startRollout({
      model: 'digits',
      version: 2,
      target: { labels: { site: 'a' } },
      healthWindowSec: 3600,
    });
    expect(rollout).toMatchObject({ model: 'digits', version: 2, state: 'running' });
    expect((await client.getRollout(rollout.id)).id).toBe(rollout.id);
    expect((await client.listRollouts({ model: 'digits' })).rollouts.map((r) => r.id)).toEqual([rollout.id]);
    expect((await client.pauseRollout(rollout.id)).state).toBe('paused');
    expect((await client.resumeRollout(rollout.id)).state).toBe('running');
    expect((await client.rollbackRollout(rollout.id)).state).toBe('rolled-back');

    const retired = await client.retireVersion('digits', 1, { successor: 2, graceSec: 60 });
    expect(retired).toMatchObject({ model: 'digits', version: 1, successor: 2, graceSec: 60 });
    expect((await client.listRetirements('digits')).retirements.map((r) => r.version)).toEqual([1]);

    // Every answer is what its response schema (and so the OpenAPI document) declares.
    const answers: [z.ZodType, unknown, string][] = [
      [schemas.HealthResponse, await client.health(), 'health'],
      [schemas.CaResponse, await client.ca(), 'ca'],
      [schemas.RevocationsResponse, await client.revocations(), 'revocations'],
      [schemas.AgentList, await client.listAgents(), 'agents'],
      [schemas.AgentView, await client.getAgent(agent.id), 'agent'],
      [schemas.ModelList, await client.listModels(), 'models'],
      [schemas.ModelDetail, await client.getModel('digits'), 'model'],
      [schemas.VersionList, await client.listVersions('digits'), 'versions'],
      [schemas.VersionView, await client.getVersion('digits', 2), 'version'],
      [schemas.ModelJson, await client.getArtifact('digits', 2), 'artifact'],
      [schemas.JobList, await client.listJobs(), 'jobs'],
      [schemas.JobView, await client.getJob((await client.listJobs()).jobs[0].id), 'job'],
      [schemas.TokenList, await client.listTokens(), 'tokens'],
      [schemas.AuditPage, await client.audit(), 'audit'],
      [schemas.EvaluationRecord, evaluation, 'evaluation'],
      [schemas.EvaluationList, await client.listEvaluations('digits'), 'evaluations'],
      [schemas.PolicyResponse, await client.getPolicy('digits'), 'policy'],
      [schemas.AliasList, await client.listAliases('digits'), 'aliases'],
      [schemas.RolloutRecord, await client.getRollout(rollout.id), 'rollout'],
      [schemas.RolloutList, await client.listRollouts(), 'rollouts'],
      [schemas.RetirementRecord, retired, 'retirement'],
      [schemas.RetirementList, await client.listRetirements('digits'), 'retirements'],
    ];
    for (const [schema, value, what] of answers) expectConforms(schema, value, what);
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

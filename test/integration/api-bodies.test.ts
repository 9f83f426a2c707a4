// The operator API over real HTTPS with request bodies sent both ways real clients send them:
// with a Content-Length, and chunked in several writes (node:https, fetch-like streaming, curl).
import { writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { curlPost, HAVE_CURL, sendBody, sendEndless } from '../helpers/http-body.ts';

const MLP = { kind: 'mlp', inputShape: [4], layers: [3], activation: 'relu' };

describe('operator API request bodies, sent with a Content-Length or chunked', () => {
  let cluster: TestCluster;
  let auth: Record<string, string>;
  let caFile: string;

  beforeAll(async () => {
    cluster = await startTestCluster();
    auth = { authorization: `Bearer ${cluster.adminToken}` };
    caFile = join(cluster.dir, 'ca.pem');
    await writeFile(caFile, cluster.caPem);
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('creates an enrollment token and a model from chunked bodies as from sized ones', async () => {
    for (const framing of ['length', 'chunked'] as const) {
      const token = await sendBody(`${cluster.apiUrl}/v1/enrollment-tokens`, '{"ttlSec": 600}', {
        framing,
        pieces: 5,
        headers: auth,
        ca: cluster.caPem,
      });
      expect(token.status, framing).toBe(201);
      expect(JSON.parse(token.text).token).toMatch(/^loom1\./);
      const model = await sendBody(
        `${cluster.apiUrl}/v1/models`,
        JSON.stringify({ name: `bodies-${framing}`, architecture: MLP }),
        { framing, pieces: 5, headers: auth, ca: cluster.caPem },
      );
      expect(model.status, framing).toBe(201);
      expect(JSON.parse(model.text)).toMatchObject({ name: `bodies-${framing}` });
    }
  });

  it.skipIf(!HAVE_CURL)('takes a body curl streams chunked from stdin', async () => {
    const res = await curlPost(`${cluster.apiUrl}/v1/enrollment-tokens`, '{"ttlSec": 60}', {
      framing: 'chunked',
      headers: auth,
      caFile,
    });
    expect(res.status).toBe(201);
    expect(JSON.parse(res.text).token).toMatch(/^loom1\./);
  });

  it('refuses a chunked body over 64 KiB with 413 and serves the next request on the same connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: cluster.caPem });
    try {
      const big = JSON.stringify({ ttlSec: 60, pad: 'x'.repeat(256 * 1024) });
      const refused = await sendBody(`${cluster.apiUrl}/v1/enrollment-tokens`, big, {
        framing: 'chunked',
        pieces: 16,
        headers: auth,
        agent,
      });
      expect(refused.status).toBe(413);
      expect(JSON.parse(refused.text)).toMatchObject({ error: { code: 'LOOM_ERR_FRAME_TOO_LARGE' } });
      const next = await sendBody(`${cluster.apiUrl}/v1/enrollment-tokens`, '{}', {
        framing: 'chunked',
        headers: auth,
        agent,
      });
      expect(next.status).toBe(201);
      expect(next.socket).toBe(refused.socket);
    } finally {
      agent.destroy();
    }
  });

  it('answers 413 to a chunked body that never ends while it is still arriving, then closes that connection', async () => {
    const reply = await sendEndless(`${cluster.apiUrl}/v1/enrollment-tokens`, {
      headers: auth,
      ca: cluster.caPem,
    });
    expect(reply.status).toBe(413);
    expect(reply.stillSending).toBe(true);
    expect(JSON.parse(reply.text)).toMatchObject({ error: { code: 'LOOM_ERR_FRAME_TOO_LARGE' } });
    await reply.closed;
    expect((await cluster.api<{ token: string }>('/v1/enrollment-tokens', {})).token).toMatch(/^loom1\./);
  });

  it('checks the token before reading a body: an endless unauthenticated upload gets 401, not 413', async () => {
    // POST /v1/models takes up to 256 MiB; nobody without a token may make the server read that.
    const reply = await sendEndless(`${cluster.apiUrl}/v1/models`, { ca: cluster.caPem });
    expect(reply.status).toBe(401);
    expect(reply.stillSending).toBe(true);
    expect(JSON.parse(reply.text)).toMatchObject({ error: { code: 'LOOM_ERR_UNAUTHORIZED' } });
    await reply.closed;
  });
});

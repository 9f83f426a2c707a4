// The inference API with the site's API keys and with HTTPS on a certificate of the site's
// choosing: real servers on loopback, real key files, certificates made by certs/.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueServerCert } from '../../certs/index.ts';
import { ApiKeyRing, createApiKey, revokeApiKey } from '../../edge-agent/api-keys/index.ts';
import { ModelServer, startInferenceServer } from '../../edge-agent/inference/index.ts';
import { type LocalModelStore, openLocalModelStore } from '../../edge-agent/store/index.ts';
import { initCompute } from '../../shared/compute/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { initialWeights, type ModelArchitecture } from '../../shared/models/index.ts';
import { waitUntil } from '../helpers/cluster.ts';
import { curlPost, HAVE_CURL, sendBody } from '../helpers/http-body.ts';

const ARCH: ModelArchitecture = { kind: 'logistic', inputShape: [4], classes: 3 };
const silent = createLogger('silent');
const INFER = JSON.stringify({
  inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
});

let dir: string;
let store: LocalModelStore;
let models: ModelServer;

beforeAll(async () => {
  await initCompute();
  dir = await mkdtemp(join(tmpdir(), 'loom-inference-auth-'));
  store = await openLocalModelStore(dir);
  await store.put({
    name: 'iris',
    version: 1,
    architecture: ARCH,
    weights: (await initialWeights(ARCH)).weights,
  });
  models = new ModelServer(store);
  await models.load('iris', 1);
});

afterAll(async () => {
  models?.dispose();
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function get(
  url: string,
  key?: string,
): Promise<{ status: number; json: Record<string, unknown>; www: string | null }> {
  const res = await fetch(url, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  return {
    status: res.status,
    json: (await res.json()) as Record<string, unknown>,
    www: res.headers.get('www-authenticate'),
  };
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

describe('inference API keys', () => {
  let keysDir: string;
  let ring: ApiKeyRing;
  let server: { url: string; close(): Promise<void> };

  beforeAll(async () => {
    keysDir = await mkdtemp(join(tmpdir(), 'loom-inference-keys-'));
    ring = await ApiKeyRing.open(keysDir, { pollMs: 20 });
    server = await startInferenceServer(models, {
      port: 0,
      log: silent,
      authorize: (h) => ring.authorize(h),
    });
  });

  afterAll(async () => {
    await server?.close();
    ring?.close();
    await rm(keysDir, { recursive: true, force: true });
  });

  it('are not asked for while the site has made none', async () => {
    expect(await infer(server.url)).toBe(200);
    expect((await get(`${server.url}/v2`)).status).toBe(200);
  });

  it('are required by metadata and infer once one exists; health stays open for probes', async () => {
    const { key } = await createApiKey(keysDir, { name: 'app' });
    await waitUntil(async () => (await infer(server.url)) === 401, 10_000, 'the key file to be read');
    const refused = await get(`${server.url}/v2/models/iris`);
    expect(refused).toEqual({
      status: 401,
      json: { error: expect.stringMatching(/API key is required/), code: 'LOOM_ERR_UNAUTHORIZED' },
      www: 'Bearer realm="loom-edge"',
    });
    expect((await get(`${server.url}/v2`)).status).toBe(401);
    expect((await get(`${server.url}/v2/models/iris/ready`)).status).toBe(401);
    expect(await infer(server.url, `${key.slice(0, -4)}0000`)).toBe(401);
    expect((await get(`${server.url}/v2/health/live`)).status).toBe(200);
    expect((await get(`${server.url}/v2/health/ready`)).json).toEqual({ ready: true });

    expect(await infer(server.url, key)).toBe(200);
    expect((await get(`${server.url}/v2/models/iris`, key)).status).toBe(200);
    expect((await get(`${server.url}/v2`, key)).status).toBe(200);
  });

  it('take a key in a chunked request and from curl', async () => {
    const { key } = await createApiKey(keysDir, { name: 'streamer' });
    await waitUntil(async () => (await infer(server.url, key)) === 200, 10_000, 'the new key');
    const chunked = await sendBody(`${server.url}/v2/models/iris/infer`, INFER, {
      framing: 'chunked',
      headers: { authorization: `Bearer ${key}` },
    });
    expect(chunked.status).toBe(200);
    const anonymous = await sendBody(`${server.url}/v2/models/iris/infer`, INFER, { framing: 'chunked' });
    expect(anonymous.status).toBe(401);
    if (HAVE_CURL) {
      const res = await curlPost(`${server.url}/v2/models/iris/infer`, INFER, {
        framing: 'chunked',
        headers: { authorization: `Bearer ${key}` },
      });
      expect(res.status).toBe(200);
    }
  });

  it('stop working when revoked, without a restart', async () => {
    const { key, info } = await createApiKey(keysDir, { name: 'leaked' });
    await waitUntil(async () => (await infer(server.url, key)) === 200, 10_000, 'the new key');
    await revokeApiKey(keysDir, info.id);
    await waitUntil(async () => (await infer(server.url, key)) === 401, 10_000, 'the revocation');
  });
});

describe('inference over HTTPS', () => {
  let tlsDir: string;
  let ca: { certPem: string; keyPem: string };
  const certPath = () => join(tlsDir, 'cert.pem');
  const keyPath = () => join(tlsDir, 'key.pem');

  async function writePair(): Promise<string> {
    const pair = issueServerCert(ca, { hosts: ['127.0.0.1', 'localhost'] });
    await writeFile(keyPath(), pair.keyPem);
    await writeFile(certPath(), pair.certPem);
    return pair.certPem;
  }

  /** The fingerprint of the certificate a TLS server on `port` presents now. */
  function servedFingerprint(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'localhost' }, () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      });
      socket.on('error', reject);
    });
  }

  beforeAll(async () => {
    tlsDir = await mkdtemp(join(tmpdir(), 'loom-inference-tls-'));
    // Any CA the site trusts will do; here one made by certs/.
    ca = createCA({ commonName: 'Site CA' });
    await writePair();
  });

  afterAll(async () => {
    await rm(tlsDir, { recursive: true, force: true });
  });

  it('serves the API over HTTPS with the certificate given, to node:https and curl', async () => {
    const server = await startInferenceServer(models, {
      port: 0,
      log: silent,
      tls: { certPath: certPath(), keyPath: keyPath() },
    });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      for (const framing of ['length', 'chunked'] as const) {
        const res = await sendBody(`${server.url}/v2/models/iris/infer`, INFER, { framing, ca: ca.certPem });
        expect(res.status, framing).toBe(200);
      }
      if (HAVE_CURL) {
        const caFile = join(tlsDir, 'ca.pem');
        await writeFile(caFile, ca.certPem);
        expect(
          (await curlPost(`${server.url}/v2/models/iris/infer`, INFER, { framing: 'chunked', caFile }))
            .status,
        ).toBe(200);
      }
      // Plain HTTP to the HTTPS port gets no answer from the API.
      const plain = await new Promise<string>((resolve) => {
        const req = httpRequest(server.url.replace('https:', 'http:') + '/v2/health/live', (res) => {
          res.resume();
          resolve(`status ${res.statusCode}`);
        });
        req.on('error', () => resolve('refused'));
        req.end();
      });
      expect(plain).not.toBe('status 200');
    } finally {
      await server.close();
    }
  });

  it('puts a replaced certificate in service without a restart', async () => {
    const server = await startInferenceServer(models, {
      port: 0,
      log: silent,
      tls: { certPath: certPath(), keyPath: keyPath(), pollMs: 20 },
    });
    try {
      const port = Number(new URL(server.url).port);
      const before = await servedFingerprint(port);
      await writePair();
      await waitUntil(async () => (await servedFingerprint(port)) !== before, 10_000, 'the new certificate');
      expect(
        (await sendBody(`${server.url}/v2/models/iris/infer`, INFER, { framing: 'length', ca: ca.certPem }))
          .status,
      ).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('refuses to start with a key that is not the certificate’s, or a file that is missing', async () => {
    const other = issueServerCert(ca, { hosts: ['127.0.0.1'] });
    const wrongKey = join(tlsDir, 'other-key.pem');
    await writeFile(wrongKey, other.keyPem);
    await expect(
      startInferenceServer(models, {
        port: 0,
        log: silent,
        tls: { certPath: certPath(), keyPath: wrongKey },
      }),
    ).rejects.toMatchObject({
      code: 'LOOM_ERR_INVALID_CONFIG',
      message: expect.stringMatching(/cannot be used together/),
    });
    await expect(
      startInferenceServer(models, {
        port: 0,
        log: silent,
        tls: { certPath: join(tlsDir, 'none.pem'), keyPath: keyPath() },
      }),
    ).rejects.toMatchObject({ code: 'LOOM_ERR_INVALID_CONFIG' });
  });
});

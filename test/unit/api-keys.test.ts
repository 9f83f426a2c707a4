// The site's inference API keys: the key file in a real temp folder and the ring a running
// agent checks requests against, including reloads when the file changes.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ApiKeyRing,
  apiKeyFilePath,
  createApiKey,
  listApiKeys,
  revokeApiKey,
} from '../../edge-agent/api-keys/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import { waitUntil } from '../helpers/cluster.ts';

let dir: string;
const rings: ApiKeyRing[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loom-api-keys-'));
});

afterEach(async () => {
  for (const ring of rings.splice(0)) ring.close();
  await rm(dir, { recursive: true, force: true });
});

async function ring(opts: { requireKey?: boolean } = {}): Promise<ApiKeyRing> {
  const r = await ApiKeyRing.open(dir, { pollMs: 20, ...opts });
  rings.push(r);
  return r;
}

/** The code `fn` throws, or 'ok'. */
function outcome(fn: () => void): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return isLoomError(err) ? err.code : String(err);
  }
}

describe('the inference API key file', () => {
  it('keeps only a hash of each key, owner-readable only, and lists keys without secrets', async () => {
    const a = await createApiKey(dir, { name: 'dashboard' });
    const b = await createApiKey(dir);
    expect(a.key).toMatch(/^loom_[0-9a-f]{12}_[0-9a-f]{64}$/);
    const file = await readFile(apiKeyFilePath(dir), 'utf8');
    expect(file).not.toContain(a.key.split('_')[2]);
    expect(file).not.toContain(b.key.split('_')[2]);
    expect((await stat(apiKeyFilePath(dir))).mode & 0o777).toBe(0o600);
    const listed = await listApiKeys(dir);
    expect(listed).toEqual([
      { id: a.info.id, name: 'dashboard', createdAt: a.info.createdAt, revoked: false },
      { id: b.info.id, name: 'inference client', createdAt: b.info.createdAt, revoked: false },
    ]);
    expect(JSON.stringify(listed)).not.toMatch(/hash|loom_/);
  });

  it('loses no key when several commands add keys at once', async () => {
    const made = await Promise.all(Array.from({ length: 8 }, (_, i) => createApiKey(dir, { name: `k${i}` })));
    expect((await listApiKeys(dir)).map((k) => k.id).sort()).toEqual(made.map((m) => m.info.id).sort());
  });

  it('revokes a key by id, keeps it listed, and refuses unknown ids and bad names', async () => {
    const { info } = await createApiKey(dir);
    const revoked = await revokeApiKey(dir, info.id, new Date('2030-01-01T00:00:00Z'));
    expect(revoked).toMatchObject({ id: info.id, revoked: true, revokedAt: '2030-01-01T00:00:00.000Z' });
    expect(await revokeApiKey(dir, info.id)).toEqual(revoked);
    expect(await listApiKeys(dir)).toEqual([revoked]);
    await expect(revokeApiKey(dir, 'ffffffffffff')).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
    for (const name of ['', 'x'.repeat(65), 'bell\u0007']) {
      await expect(createApiKey(dir, { name })).rejects.toMatchObject({ code: 'LOOM_ERR_INVALID_ARGUMENT' });
    }
    await expect(listApiKeys(join(dir, 'missing'))).rejects.toMatchObject({
      code: 'LOOM_ERR_INVALID_ARGUMENT',
    });
  });

  it('refuses a damaged key file rather than starting with fewer keys', async () => {
    await writeFile(apiKeyFilePath(dir), '{"version": 1, "keys": [{"id": "nope"}]}');
    await expect(listApiKeys(dir)).rejects.toMatchObject({ code: 'LOOM_ERR_INVALID_CONFIG' });
    await expect(ApiKeyRing.open(dir)).rejects.toMatchObject({ code: 'LOOM_ERR_INVALID_CONFIG' });
  });
});

describe('the key ring of a running agent', () => {
  it('lets every request through while the site has made no key', async () => {
    const r = await ring();
    expect(r.required).toBe(false);
    expect(outcome(() => r.authorize(undefined))).toBe('ok');
  });

  it('needs a live key once one exists, and picks up new and revoked keys without a restart', async () => {
    const r = await ring();
    const first = await createApiKey(dir);
    await waitUntil(() => r.required, 10_000, 'the new key file to be read');
    expect(outcome(() => r.authorize(undefined))).toBe('LOOM_ERR_UNAUTHORIZED');
    expect(outcome(() => r.authorize('Basic abc'))).toBe('LOOM_ERR_UNAUTHORIZED');
    // The key with its last digit changed (to another digit: a key may already end in 0).
    const wrong = `${first.key.slice(0, -1)}${first.key.endsWith('0') ? '1' : '0'}`;
    expect(outcome(() => r.authorize(`Bearer ${wrong}`))).toBe('LOOM_ERR_UNAUTHORIZED');
    expect(outcome(() => r.authorize('Bearer loom_000000000000_' + '0'.repeat(64)))).toBe(
      'LOOM_ERR_UNAUTHORIZED',
    );
    expect(outcome(() => r.authorize(`Bearer ${first.key}`))).toBe('ok');
    expect(outcome(() => r.authorize(`bearer  ${first.key} `))).toBe('ok');

    const second = await createApiKey(dir);
    await waitUntil(
      () => outcome(() => r.authorize(`Bearer ${second.key}`)) === 'ok',
      10_000,
      'the second key',
    );
    await revokeApiKey(dir, first.info.id);
    await waitUntil(
      () => outcome(() => r.authorize(`Bearer ${first.key}`)) === 'LOOM_ERR_UNAUTHORIZED',
      10_000,
      'the revocation to be read',
    );
    expect(outcome(() => r.authorize(`Bearer ${second.key}`))).toBe('ok');

    // Revoking the last live key closes the API to everyone rather than opening it.
    await revokeApiKey(dir, second.info.id);
    await waitUntil(() => r.liveCount === 0, 10_000, 'the last revocation to be read');
    expect(r.required).toBe(true);
    expect(outcome(() => r.authorize(undefined))).toBe('LOOM_ERR_UNAUTHORIZED');
  });

  it('keeps the keys it has when the file is damaged while it runs', async () => {
    const { key } = await createApiKey(dir);
    const errors: string[] = [];
    const log = createLogger({ format: 'json', write: (l) => errors.push(l) });
    const r = await ApiKeyRing.open(dir, { pollMs: 20, log });
    rings.push(r);
    await writeFile(apiKeyFilePath(dir), 'not json');
    await waitUntil(() => errors.some((l) => l.includes('cannot reload')), 10_000, 'the failed reload');
    expect(outcome(() => r.authorize(`Bearer ${key}`))).toBe('ok');
    expect(outcome(() => r.authorize(undefined))).toBe('LOOM_ERR_UNAUTHORIZED');
    // Commands refuse to edit it too, rather than start a new file without the old keys.
    await expect(createApiKey(dir)).rejects.toMatchObject({ code: 'LOOM_ERR_INVALID_CONFIG' });
  });

  it('with requireKey refuses everything until a key exists', async () => {
    const r = await ring({ requireKey: true });
    expect(r.required).toBe(true);
    expect(outcome(() => r.authorize(undefined))).toBe('LOOM_ERR_UNAUTHORIZED');
    const { key } = await createApiKey(dir);
    await waitUntil(() => outcome(() => r.authorize(`Bearer ${key}`)) === 'ok', 10_000, 'the key');
  });
});

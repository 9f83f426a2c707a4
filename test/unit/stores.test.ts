// Contract tests of the agent directory, token store and audit log, run against their LevelDB implementations.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEntry, AuditLog } from '../../coordinator/audit/index.ts';
import { createLevelAuditLog } from '../../coordinator/audit/index.ts';
import type {
  AgentDirectory,
  AgentRecord,
  ApiTokenRecord,
  EnrollmentTokenRecord,
  TokenStore,
} from '../../coordinator/directory/index.ts';
import { createLevelAgentDirectory, createLevelTokenStore } from '../../coordinator/directory/index.ts';
import type { CoordinatorDb } from '../../coordinator/store/index.ts';
import {
  GENESIS_HASH,
  hashAuditEntry,
  jsonSublevel,
  KeyedMutex,
  numericKey,
  openCoordinatorDb,
  SUBLEVEL,
} from '../../coordinator/store/index.ts';
import { canonicalJson } from '../../shared/protocol/index.ts';
import { sha256Hex } from '../../shared/tensors/index.ts';

/** A store under test and how to dispose of it. */
interface StoreHarness<S> {
  store: S;
  close(): Promise<void>;
}

/** An audit log under test, with access behind its back for tampering and restarts. */
interface AuditHarness extends StoreHarness<AuditLog> {
  /** Closes the backing store, opens it again and returns (and installs) a fresh log on it. */
  reopen(): Promise<AuditLog>;
  /** Rewrites the stored entry `seq` with `change`, bypassing the log. */
  tamper(seq: number, change: (entry: AuditEntry) => AuditEntry): Promise<void>;
  /** Deletes the stored entry `seq`, bypassing the log. */
  remove(seq: number): Promise<void>;
}

function agent(id: string, overrides: Partial<AgentRecord> = {}): AgentRecord {
  return {
    id,
    name: `edge ${id}`,
    enrolledAt: '2025-01-01T00:00:00.000Z',
    certSerial: `serial-${id}`,
    certNotAfter: '2026-01-01T00:00:00.000Z',
    revoked: false,
    ...overrides,
  };
}

const NOW = new Date('2025-06-01T12:00:00.000Z');

function enrollmentToken(id: string, overrides: Partial<EnrollmentTokenRecord> = {}): EnrollmentTokenRecord {
  return {
    id,
    secretHash: `hash-of-${id}`,
    expiresAt: '2025-06-02T12:00:00.000Z',
    createdAt: '2025-06-01T00:00:00.000Z',
    createdBy: 'admin',
    ...overrides,
  };
}

function apiToken(id: string, overrides: Partial<ApiTokenRecord> = {}): ApiTokenRecord {
  return {
    id,
    hash: `hash-${id}`,
    role: 'operator',
    name: `token ${id}`,
    createdAt: NOW.toISOString(),
    ...overrides,
  };
}

const secretIs =
  (id: string) =>
  (secretHash: string): boolean =>
    secretHash === `hash-of-${id}`;

function agentDirectoryContract(name: string, factory: () => Promise<StoreHarness<AgentDirectory>>): void {
  describe(`${name} agent directory`, () => {
    let harness: StoreHarness<AgentDirectory>;
    let agents: AgentDirectory;

    beforeEach(async () => {
      harness = await factory();
      agents = harness.store;
    });

    afterEach(async () => {
      await harness.close();
    });

    it('adds agents and reads them back by id', async () => {
      await agents.add(agent('a1'));
      expect(await agents.get('a1')).toEqual(agent('a1'));
      expect(await agents.find('a1')).toEqual(agent('a1'));
      expect(await agents.find('missing')).toBeUndefined();
      await expect(agents.get('missing')).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
    });

    it('rejects a second agent with the same id with LOOM_ERR_CONFLICT', async () => {
      await agents.add(agent('a1'));
      await expect(agents.add(agent('a1', { name: 'impostor' }))).rejects.toMatchObject({
        code: 'LOOM_ERR_CONFLICT',
      });
      expect((await agents.get('a1')).name).toBe('edge a1');
    });

    it('lists agents sorted by id', async () => {
      for (const id of ['c', 'a', 'b']) await agents.add(agent(id));
      expect((await agents.list()).map((a) => a.id)).toEqual(['a', 'b', 'c']);
    });

    it('updates fields without changing the id or fields left out of the patch', async () => {
      await agents.add(agent('a1'));
      const updated = await agents.update('a1', { lastSeen: NOW.toISOString(), backend: 'wasm' });
      expect(updated).toEqual({ ...agent('a1'), lastSeen: NOW.toISOString(), backend: 'wasm' });
      const withId = { name: 'renamed', id: 'other' } as Partial<Omit<AgentRecord, 'id'>>;
      expect((await agents.update('a1', withId)).id).toBe('a1');
      expect(await agents.get('a1')).toMatchObject({ id: 'a1', name: 'renamed', backend: 'wasm' });
      expect(await agents.find('other')).toBeUndefined();
      await expect(agents.update('missing', { name: 'x' })).rejects.toMatchObject({
        code: 'LOOM_ERR_NOT_FOUND',
      });
    });

    it('keeps every field of concurrent updates to one agent', async () => {
      await agents.add(agent('a1'));
      await Promise.all([
        agents.update('a1', { lastSeen: NOW.toISOString() }),
        agents.update('a1', { backend: 'cpu' }),
        agents.update('a1', { name: 'renamed' }),
      ]);
      expect(await agents.get('a1')).toMatchObject({
        lastSeen: NOW.toISOString(),
        backend: 'cpu',
        name: 'renamed',
      });
    });

    it('revokes an agent once and keeps the first revocation time', async () => {
      await agents.add(agent('a1'));
      const first = await agents.revoke('a1', NOW);
      expect(first).toMatchObject({ revoked: true, revokedAt: NOW.toISOString() });
      const again = await agents.revoke('a1', new Date('2030-01-01T00:00:00.000Z'));
      expect(again).toEqual(first);
      expect(await agents.get('a1')).toEqual(first);
      await expect(agents.revoke('missing')).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
    });
  });
}

function tokenStoreContract(name: string, factory: () => Promise<StoreHarness<TokenStore>>): void {
  describe(`${name} token store`, () => {
    let harness: StoreHarness<TokenStore>;
    let tokens: TokenStore;

    beforeEach(async () => {
      harness = await factory();
      tokens = harness.store;
    });

    afterEach(async () => {
      await harness.close();
    });

    it('consumes an enrollment token once and marks who used it', async () => {
      await tokens.addEnrollmentToken(enrollmentToken('t1'));
      const used = await tokens.consumeEnrollmentToken('t1', secretIs('t1'), 'agent-1', NOW);
      expect(used).toEqual({ ...enrollmentToken('t1'), usedAt: NOW.toISOString(), usedBy: 'agent-1' });
      const second = tokens.consumeEnrollmentToken('t1', secretIs('t1'), 'agent-2', NOW);
      await expect(second).rejects.toMatchObject({ code: 'LOOM_ERR_TOKEN_INVALID' });
      await expect(second).rejects.toThrow(/already used/);
    });

    it('refuses an expired enrollment token', async () => {
      await tokens.addEnrollmentToken(enrollmentToken('t1', { expiresAt: NOW.toISOString() }));
      const attempt = tokens.consumeEnrollmentToken('t1', secretIs('t1'), 'agent-1', NOW);
      await expect(attempt).rejects.toMatchObject({ code: 'LOOM_ERR_TOKEN_INVALID' });
      await expect(attempt).rejects.toThrow(/expired/);
    });

    it('refuses an unknown enrollment token', async () => {
      const attempt = tokens.consumeEnrollmentToken('nope', () => true, 'agent-1', NOW);
      await expect(attempt).rejects.toMatchObject({ code: 'LOOM_ERR_TOKEN_INVALID' });
      await expect(attempt).rejects.toThrow(/unknown/);
    });

    it('refuses a wrong secret without using the token up', async () => {
      await tokens.addEnrollmentToken(enrollmentToken('t1'));
      const attempt = tokens.consumeEnrollmentToken('t1', secretIs('other'), 'mallory', NOW);
      await expect(attempt).rejects.toMatchObject({ code: 'LOOM_ERR_TOKEN_INVALID' });
      await expect(attempt).rejects.toThrow(/secret/);
      await expect(
        tokens.consumeEnrollmentToken('t1', secretIs('t1'), 'agent-1', NOW),
      ).resolves.toMatchObject({
        usedBy: 'agent-1',
      });
    });

    it('lets exactly one of many concurrent consumes of a token win', async () => {
      await tokens.addEnrollmentToken(enrollmentToken('t1'));
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          tokens.consumeEnrollmentToken('t1', secretIs('t1'), `agent-${i}`, NOW),
        ),
      );
      const winners = results.filter((r) => r.status === 'fulfilled');
      expect(winners).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'LOOM_ERR_TOKEN_INVALID' });
      }
    });

    it('rejects a second enrollment token with the same id with LOOM_ERR_CONFLICT', async () => {
      await tokens.addEnrollmentToken(enrollmentToken('t1'));
      await expect(tokens.addEnrollmentToken(enrollmentToken('t1'))).rejects.toMatchObject({
        code: 'LOOM_ERR_CONFLICT',
      });
    });

    it('stores, reads and lists API tokens', async () => {
      await tokens.addApiToken(apiToken('k2', { role: 'viewer' }));
      await tokens.addApiToken(apiToken('k1', { role: 'admin', revoked: true }));
      expect(await tokens.getApiToken('k1')).toEqual(apiToken('k1', { role: 'admin', revoked: true }));
      expect(await tokens.getApiToken('missing')).toBeUndefined();
      expect((await tokens.listApiTokens()).map((t) => [t.id, t.role])).toEqual([
        ['k1', 'admin'],
        ['k2', 'viewer'],
      ]);
      await expect(tokens.addApiToken(apiToken('k1'))).rejects.toMatchObject({ code: 'LOOM_ERR_CONFLICT' });
    });

    it('finds an enrollment token without using it up, and answers undefined for an unknown id', async () => {
      await tokens.addEnrollmentToken(enrollmentToken('t1'));
      expect(await tokens.findEnrollmentToken('t1')).toEqual(enrollmentToken('t1'));
      expect(await tokens.findEnrollmentToken('missing')).toBeUndefined();
      expect(await tokens.findEnrollmentToken('')).toBeUndefined();
      await expect(
        tokens.consumeEnrollmentToken('t1', secretIs('t1'), 'agent-1', NOW),
      ).resolves.toMatchObject({ usedBy: 'agent-1' });
      expect(await tokens.findEnrollmentToken('t1')).toMatchObject({ usedBy: 'agent-1' });
    });

    it('revokes an API token once, keeping the first revocation time', async () => {
      await tokens.addApiToken(apiToken('admin-1', { role: 'admin' }));
      await tokens.addApiToken(apiToken('op-1'));
      const revoked = await tokens.revokeApiToken('op-1', NOW);
      expect(revoked).toEqual(apiToken('op-1', { revoked: true, revokedAt: NOW.toISOString() }));
      const later = new Date(NOW.getTime() + 60_000);
      expect((await tokens.revokeApiToken('op-1', later)).revokedAt).toBe(NOW.toISOString());
      expect(await tokens.getApiToken('op-1')).toEqual(revoked);
      await expect(tokens.revokeApiToken('missing')).rejects.toMatchObject({ code: 'LOOM_ERR_NOT_FOUND' });
    });

    it('refuses to revoke the last admin token that is not revoked with LOOM_ERR_CONFLICT', async () => {
      await tokens.addApiToken(apiToken('admin-1', { role: 'admin' }));
      await tokens.addApiToken(apiToken('admin-old', { role: 'admin', revoked: true }));
      await tokens.addApiToken(apiToken('op-1'));
      await expect(tokens.revokeApiToken('admin-1', NOW)).rejects.toMatchObject({
        code: 'LOOM_ERR_CONFLICT',
      });
      expect((await tokens.getApiToken('admin-1'))?.revoked).toBeUndefined();
      await tokens.addApiToken(apiToken('admin-2', { role: 'admin' }));
      await expect(tokens.revokeApiToken('admin-1', NOW)).resolves.toMatchObject({ revoked: true });
      await expect(tokens.revokeApiToken('admin-2', NOW)).rejects.toMatchObject({
        code: 'LOOM_ERR_CONFLICT',
      });
    });

    it('lets only one of two concurrent revocations of the last two admin tokens win', async () => {
      await tokens.addApiToken(apiToken('admin-1', { role: 'admin' }));
      await tokens.addApiToken(apiToken('admin-2', { role: 'admin' }));
      const results = await Promise.allSettled([
        tokens.revokeApiToken('admin-1', NOW),
        tokens.revokeApiToken('admin-2', NOW),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const live = (await tokens.listApiTokens()).filter((t) => t.role === 'admin' && !t.revoked);
      expect(live).toHaveLength(1);
    });
  });
}

function auditLogContract(name: string, factory: () => Promise<AuditHarness>): void {
  describe(`${name} audit log`, () => {
    let harness: AuditHarness;
    let audit: AuditLog;

    beforeEach(async () => {
      harness = await factory();
      audit = harness.store;
    });

    afterEach(async () => {
      await harness.close();
    });

    async function appendMany(log: AuditLog, count: number): Promise<AuditEntry[]> {
      const appended: AuditEntry[] = [];
      for (let i = 0; i < count; i++) {
        appended.push(
          await log.append({
            actor: 'admin',
            action: 'model.create',
            target: `m${i}`,
            details: { i, tags: ['x'] },
          }),
        );
      }
      return appended;
    }

    it('chains each entry’s hash to the one before, starting from 64 zeros', async () => {
      const [first, second] = await appendMany(audit, 2);
      expect(first).toMatchObject({
        seq: 1,
        actor: 'admin',
        action: 'model.create',
        target: 'm0',
        prevHash: GENESIS_HASH,
      });
      expect(second).toMatchObject({ seq: 2, prevHash: first.hash });
      const { hash, ...rest } = second;
      expect(hash).toBe(sha256Hex(canonicalJson(rest)));
      expect(hash).toBe(hashAuditEntry(rest));
      expect(await audit.verify()).toEqual({ ok: true, entries: 2 });
    });

    it('stores entries without target or details and still verifies them', async () => {
      const entry = await audit.append({ actor: 'system', action: 'coordinator.start' });
      expect(entry).not.toHaveProperty('target');
      expect(entry).not.toHaveProperty('details');
      expect(await audit.list()).toEqual([entry]);
      expect(await audit.verify()).toEqual({ ok: true, entries: 1 });
    });

    it('verifies an empty log', async () => {
      expect(await audit.verify()).toEqual({ ok: true, entries: 0 });
    });

    it('lists entries after a seq, 100 at most unless told otherwise', async () => {
      await appendMany(audit, 105);
      const firstPage = await audit.list();
      expect(firstPage).toHaveLength(100);
      expect(firstPage[0].seq).toBe(1);
      expect((await audit.list({ after: 100 })).map((e) => e.seq)).toEqual([101, 102, 103, 104, 105]);
      expect((await audit.list({ after: 9, limit: 3 })).map((e) => e.seq)).toEqual([10, 11, 12]);
      await expect(audit.list({ limit: 0 })).rejects.toMatchObject({ code: 'LOOM_ERR_INVALID_ARGUMENT' });
    });

    it('serialises concurrent appends into one unbroken chain', async () => {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => audit.append({ actor: `a${i}`, action: 'ping' })),
      );
      const entries = await audit.list();
      expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(await audit.verify()).toEqual({ ok: true, entries: 20 });
    });

    it('detects an edited entry at its seq', async () => {
      await appendMany(audit, 5);
      await harness.tamper(3, (e) => ({ ...e, details: { ...e.details, i: 99 } }));
      expect(await audit.verify()).toMatchObject({ ok: false, entries: 5, brokenAt: 3 });
    });

    it('detects an edited entry whose hash was recomputed, at the entry after it', async () => {
      await appendMany(audit, 5);
      await harness.tamper(3, (e) => {
        const { hash: _old, ...rest } = { ...e, actor: 'someone-else' };
        return { ...rest, hash: hashAuditEntry(rest) };
      });
      expect(await audit.verify()).toMatchObject({ ok: false, entries: 5, brokenAt: 4 });
    });

    it('detects a deleted entry at the missing seq', async () => {
      await appendMany(audit, 5);
      await harness.remove(2);
      expect(await audit.verify()).toMatchObject({ ok: false, brokenAt: 2 });
    });

    it('detects entries lost from the end against the head recorded durably', async () => {
      await appendMany(audit, 5);
      await harness.remove(5);
      await harness.remove(4);
      const reopened = await harness.reopen();
      expect(await reopened.verify()).toMatchObject({
        ok: false,
        entries: 3,
        brokenAt: 4,
        reason: expect.stringMatching(/ends at entry 3, but entry 5 was recorded durably/),
      });
    });

    it('continues the chain after the store is reopened', async () => {
      const before = await appendMany(audit, 3);
      const reopened = await harness.reopen();
      const next = await reopened.append({ actor: 'admin', action: 'job.start' });
      expect(next).toMatchObject({ seq: 4, prevHash: before[2].hash });
      expect(await reopened.verify()).toEqual({ ok: true, entries: 4 });
    });
  });
}

/** A fresh coordinator database in a temp dir, plus a close that also removes it. */
async function tempDb(): Promise<{ dir: string; db: CoordinatorDb; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'loom-stores-'));
  const db = await openCoordinatorDb(dir);
  return {
    dir,
    db,
    async dispose() {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

agentDirectoryContract('LevelDB', async () => {
  const { db, dispose } = await tempDb();
  return { store: createLevelAgentDirectory(db), close: dispose };
});

tokenStoreContract('LevelDB', async () => {
  const { db, dispose } = await tempDb();
  return { store: createLevelTokenStore(db), close: dispose };
});

auditLogContract('LevelDB', async () => {
  const { dir, db: first } = await tempDb();
  let db = first;
  // The harness knows the LevelDB layout: entries sit in the audit sublevel under their padded seq.
  const rawEntries = () => jsonSublevel<AuditEntry>(db.root, SUBLEVEL.audit);
  const harness: AuditHarness = {
    store: createLevelAuditLog(db),
    async reopen() {
      await db.close();
      db = await openCoordinatorDb(dir);
      harness.store = createLevelAuditLog(db);
      return harness.store;
    },
    async tamper(seq, change) {
      const entry = await rawEntries().get(numericKey(seq));
      if (entry === undefined) throw new Error(`no audit entry ${seq}`);
      await rawEntries().put(numericKey(seq), change(entry));
    },
    async remove(seq) {
      await rawEntries().del(numericKey(seq));
    },
    async close() {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
});

describe('KeyedMutex', () => {
  it('runs work for one key one at a time and different keys side by side', async () => {
    const mutex = new KeyedMutex();
    const events: string[] = [];
    const step = (label: string, ms: number) => async () => {
      events.push(`${label}+`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      events.push(`${label}-`);
      return label;
    };
    const results = await Promise.all([
      mutex.run('a', step('a1', 20)),
      mutex.run('a', step('a2', 1)),
      mutex.run('b', step('b1', 1)),
    ]);
    expect(results).toEqual(['a1', 'a2', 'b1']);
    expect(events.indexOf('a1-')).toBeLessThan(events.indexOf('a2+'));
    expect(events.indexOf('b1-')).toBeLessThan(events.indexOf('a1-'));
    expect(mutex.activeKeys).toBe(0);
  });

  it('keeps serving a key after a run fails', async () => {
    const mutex = new KeyedMutex();
    await expect(mutex.run('a', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(mutex.run('a', async () => 'ok')).resolves.toBe('ok');
    expect(mutex.activeKeys).toBe(0);
  });
});

describe('canonicalJson', () => {
  it('gives the same text for objects whose keys were added in a different order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } })).toBe(
      canonicalJson({ a: { d: [2, { y: 2, z: 1 }] }, b: 1 }),
    );
    expect(canonicalJson({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
  });
});

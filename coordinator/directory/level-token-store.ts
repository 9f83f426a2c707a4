// LevelDB implementation of the token store; enrollment tokens are consumed under a per-token lock
// and API token revocations under one store-wide lock.
import { LoomError } from '../../shared/errors/index.ts';
import {
  type CoordinatorDb,
  type JsonSublevel,
  jsonSublevel,
  type StoreOp,
  SUBLEVEL,
  type WriteOptions,
  withStoreErrors,
} from '../store/index.ts';
import { assertEnrollmentTokenUsable, enrollmentTokenInvalid } from './enrollment-token-check.ts';
import { assertRecordId, MAX_ID_LENGTH } from './record-id.ts';
import type { ApiTokenRecord, EnrollmentTokenRecord, TokenStore } from './token-store.ts';

/** Commits `ops` with the audit entry and extra writes of `options`. */
function commitWith(db: CoordinatorDb, ops: StoreOp[], options: WriteOptions): Promise<unknown> {
  const { alongside = [], ...commit } = options;
  return db.commit([...ops, ...alongside], commit);
}

/** Puts `record` under `id` unless the id is taken (LOOM_ERR_CONFLICT), under the id's lock. */
async function addOnce<V>(
  db: CoordinatorDb,
  sublevel: JsonSublevel<V>,
  lock: string,
  id: string,
  record: V,
  what: string,
  options: WriteOptions,
): Promise<void> {
  await db.locks.run(lock, () =>
    withStoreErrors(`add ${what} ${id}`, async () => {
      if (await sublevel.has(id)) throw new LoomError('LOOM_ERR_CONFLICT', `${what} ${id} already exists`);
      await commitWith(db, [{ type: 'put', sublevel, key: id, value: record }], options);
    }),
  );
}

/** A `TokenStore` on the coordinator's LevelDB database, one sublevel per kind of token. */
export function createLevelTokenStore(db: CoordinatorDb): TokenStore {
  const enrollmentTokens = jsonSublevel<EnrollmentTokenRecord>(db.root, SUBLEVEL.enrollmentTokens);
  const apiTokens = jsonSublevel<ApiTokenRecord>(db.root, SUBLEVEL.apiTokens);

  return {
    async addEnrollmentToken(t: EnrollmentTokenRecord, options: WriteOptions = {}) {
      assertRecordId(t.id, 'enrollment token');
      if (Number.isNaN(Date.parse(t.expiresAt))) {
        throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'expiresAt must be an ISO-8601 timestamp');
      }
      await addOnce(
        db,
        enrollmentTokens,
        `enrollment-token:${t.id}`,
        t.id,
        { ...t },
        'enrollment token',
        options,
      );
    },

    async consumeEnrollmentToken(
      id: string,
      matches: (secretHash: string) => boolean,
      usedBy: string,
      now: Date = new Date(),
      options: WriteOptions = {},
    ) {
      if (typeof id !== 'string' || id.length === 0) throw enrollmentTokenInvalid(String(id), 'is malformed');
      return db.locks.run(`enrollment-token:${id}`, () =>
        withStoreErrors(`consume enrollment token ${id}`, async () => {
          const token: EnrollmentTokenRecord | undefined = await enrollmentTokens.get(id);
          assertEnrollmentTokenUsable(id, token, matches, now);
          const used: EnrollmentTokenRecord = { ...token, usedAt: now.toISOString(), usedBy };
          await commitWith(db, [{ type: 'put', sublevel: enrollmentTokens, key: id, value: used }], options);
          return used;
        }),
      );
    },

    async findEnrollmentToken(id: string) {
      if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) return undefined;
      return withStoreErrors(`read enrollment token ${id}`, () => enrollmentTokens.get(id));
    },

    async addApiToken(t: ApiTokenRecord, options: WriteOptions = {}) {
      assertRecordId(t.id, 'API token');
      await addOnce(db, apiTokens, `api-token:${t.id}`, t.id, { ...t }, 'API token', options);
    },

    async getApiToken(id: string) {
      assertRecordId(id, 'API token');
      return withStoreErrors(`read API token ${id}`, () => apiTokens.get(id));
    },

    async listApiTokens() {
      return withStoreErrors('list API tokens', () => apiTokens.values().all());
    },

    async revokeApiToken(id: string, now: Date = new Date(), options: WriteOptions = {}) {
      assertRecordId(id, 'API token');
      // One lock for every revocation: the last-admin check reads all tokens, so two revocations
      // of different admin tokens must not both see the other one still live.
      return db.locks.run('api-tokens:revoke', () =>
        withStoreErrors(`revoke API token ${id}`, async () => {
          const token: ApiTokenRecord | undefined = await apiTokens.get(id);
          if (token === undefined) {
            throw new LoomError('LOOM_ERR_NOT_FOUND', `API token ${id} does not exist`, {
              details: { token: id },
            });
          }
          if (token.revoked) return token;
          if (token.role === 'admin') {
            const all = await apiTokens.values().all();
            const otherAdmins = all.filter((t) => t.role === 'admin' && !t.revoked && t.id !== id);
            if (otherAdmins.length === 0) {
              throw new LoomError(
                'LOOM_ERR_CONFLICT',
                `API token ${id} is the last admin token; create another admin token before revoking it`,
                { details: { token: id } },
              );
            }
          }
          const revoked: ApiTokenRecord = { ...token, revoked: true, revokedAt: now.toISOString() };
          await commitWith(db, [{ type: 'put', sublevel: apiTokens, key: id, value: revoked }], options);
          return revoked;
        }),
      );
    },
  };
}

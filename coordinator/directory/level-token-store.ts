// LevelDB implementation of the token store; enrollment tokens are consumed under a per-token lock.
import { LoomError } from '../../shared/errors/index.ts';
import {
  type CoordinatorDb,
  type JsonSublevel,
  jsonSublevel,
  SUBLEVEL,
  withStoreErrors,
} from '../store/index.ts';
import { assertRecordId } from './record-id.ts';
import type { ApiTokenRecord, EnrollmentTokenRecord, TokenStore } from './token-store.ts';

function tokenInvalid(id: string, reason: string): LoomError {
  return new LoomError('LOOM_ERR_TOKEN_INVALID', `enrollment token ${id} ${reason}`, {
    details: { token: id, reason },
  });
}

/** Puts `record` under `id` unless the id is taken (LOOM_ERR_CONFLICT), under the id's lock. */
async function addOnce<V>(
  db: CoordinatorDb,
  sublevel: JsonSublevel<V>,
  lock: string,
  id: string,
  record: V,
  what: string,
): Promise<void> {
  await db.locks.run(lock, () =>
    withStoreErrors(`add ${what} ${id}`, async () => {
      if (await sublevel.has(id)) throw new LoomError('LOOM_ERR_CONFLICT', `${what} ${id} already exists`);
      await sublevel.put(id, record);
    }),
  );
}

/** A `TokenStore` on the coordinator's LevelDB database, one sublevel per kind of token. */
export function createLevelTokenStore(db: CoordinatorDb): TokenStore {
  const enrollmentTokens = jsonSublevel<EnrollmentTokenRecord>(db.root, SUBLEVEL.enrollmentTokens);
  const apiTokens = jsonSublevel<ApiTokenRecord>(db.root, SUBLEVEL.apiTokens);

  return {
    async addEnrollmentToken(t: EnrollmentTokenRecord) {
      assertRecordId(t.id, 'enrollment token');
      if (Number.isNaN(Date.parse(t.expiresAt))) {
        throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'expiresAt must be an ISO-8601 timestamp');
      }
      await addOnce(db, enrollmentTokens, `enrollment-token:${t.id}`, t.id, { ...t }, 'enrollment token');
    },

    async consumeEnrollmentToken(
      id: string,
      matches: (secretHash: string) => boolean,
      usedBy: string,
      now: Date = new Date(),
    ) {
      if (typeof id !== 'string' || id.length === 0) throw tokenInvalid(String(id), 'is malformed');
      return db.locks.run(`enrollment-token:${id}`, () =>
        withStoreErrors(`consume enrollment token ${id}`, async () => {
          const token: EnrollmentTokenRecord | undefined = await enrollmentTokens.get(id);
          if (token === undefined) throw tokenInvalid(id, 'is unknown');
          // The secret is checked before the token's state, so a caller without the secret
          // learns nothing about whether the token was used or has expired.
          if (!matches(token.secretHash)) throw tokenInvalid(id, 'has a different secret');
          if (token.usedAt !== undefined) throw tokenInvalid(id, `was already used at ${token.usedAt}`);
          // Written as "not before expiry" so an unparseable expiresAt counts as expired.
          if (!(now.getTime() < Date.parse(token.expiresAt))) {
            throw tokenInvalid(id, `expired at ${token.expiresAt}`);
          }
          const used: EnrollmentTokenRecord = { ...token, usedAt: now.toISOString(), usedBy };
          await enrollmentTokens.put(id, used);
          return used;
        }),
      );
    },

    async addApiToken(t: ApiTokenRecord) {
      assertRecordId(t.id, 'API token');
      await addOnce(db, apiTokens, `api-token:${t.id}`, t.id, { ...t }, 'API token');
    },

    async getApiToken(id: string) {
      assertRecordId(id, 'API token');
      return withStoreErrors(`read API token ${id}`, () => apiTokens.get(id));
    },

    async listApiTokens() {
      return withStoreErrors('list API tokens', () => apiTokens.values().all());
    },
  };
}

// LevelDB implementation of the audit log: entries keyed by zero-padded seq, written by the
// database's commits, verified against the head the database recorded durably.
import { LoomError } from '../../shared/errors/index.ts';
import {
  type AuditEntry,
  type CoordinatorDb,
  jsonSublevel,
  numericKey,
  SUBLEVEL,
  verifyAuditChain,
  withStoreErrors,
} from '../store/index.ts';
import type { AuditListOptions, AuditLog } from './audit-log.ts';

const DEFAULT_LIST_LIMIT = 100;

function invalid(message: string): never {
  throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', message);
}

/** An `AuditLog` on the coordinator's LevelDB database. */
export function createLevelAuditLog(db: CoordinatorDb): AuditLog {
  const entries = jsonSublevel<AuditEntry>(db.root, SUBLEVEL.audit);

  return {
    async append(e) {
      const { audit } = await db.commit([], { audit: e });
      return audit!;
    },

    async list(opts: AuditListOptions = {}) {
      const after = opts.after ?? 0;
      const limit = opts.limit ?? DEFAULT_LIST_LIMIT;
      if (!Number.isSafeInteger(after) || after < 0) invalid('after must be a non-negative integer');
      if (!Number.isSafeInteger(limit) || limit < 1) invalid('limit must be a positive integer');
      return withStoreErrors('list the audit log', () =>
        entries.values({ gt: numericKey(after), limit }).all(),
      );
    },

    async verify() {
      // The head recorded at open: an entry lost from the end since then cannot go unnoticed.
      const head = db.headAtOpen?.chains?.audit;
      return withStoreErrors('verify the audit log', () => verifyAuditChain(entries.values(), head));
    },
  };
}

// LevelDB implementation of the audit log: entries keyed by zero-padded seq, appends under one lock.
import { LoomError } from '../../shared/errors/index.ts';
import { type CoordinatorDb, jsonSublevel, numericKey, SUBLEVEL, withStoreErrors } from '../store/index.ts';
import { GENESIS_HASH, hashAuditEntry, verifyAuditChain } from './audit-chain.ts';
import type { AuditEntry, AuditEvent, AuditListOptions, AuditLog } from './audit-log.ts';

/** Options of `createLevelAuditLog`. */
export interface LevelAuditLogOptions {
  /** Clock for the `at` stamp. Default: the system clock. */
  now?: () => Date;
}

const DEFAULT_LIST_LIMIT = 100;
const APPEND_LOCK = 'audit:append';

function invalid(message: string): never {
  throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', message);
}

function assertEvent(e: AuditEvent): void {
  if (typeof e.actor !== 'string' || e.actor.length === 0) invalid('audit actor must be a non-empty string');
  if (typeof e.action !== 'string' || e.action.length === 0)
    invalid('audit action must be a non-empty string');
  if (e.target !== undefined && typeof e.target !== 'string') invalid('audit target must be a string');
  if (e.details !== undefined && (e.details === null || typeof e.details !== 'object')) {
    invalid('audit details must be an object');
  }
}

/**
 * An `AuditLog` on the coordinator's LevelDB database. The chain head is read from the store at
 * every append (inside the append lock), so a restarted coordinator, or a second log instance on
 * the same database, continues the chain instead of forking it.
 */
export function createLevelAuditLog(db: CoordinatorDb, options: LevelAuditLogOptions = {}): AuditLog {
  const now = options.now ?? (() => new Date());
  const entries = jsonSublevel<AuditEntry>(db.root, SUBLEVEL.audit);

  async function head(): Promise<AuditEntry | undefined> {
    const [last] = await entries.values({ reverse: true, limit: 1 }).all();
    return last;
  }

  return {
    async append(e: AuditEvent) {
      assertEvent(e);
      // Round-trip details through JSON first, so the hash covers exactly what is stored and read back.
      const details =
        e.details === undefined
          ? undefined
          : (JSON.parse(JSON.stringify(e.details)) as Record<string, unknown>);
      return db.locks.run(APPEND_LOCK, () =>
        withStoreErrors('append to the audit log', async () => {
          const last = await head();
          const unhashed: Omit<AuditEntry, 'hash'> = {
            seq: (last?.seq ?? 0) + 1,
            at: now().toISOString(),
            actor: e.actor,
            action: e.action,
            ...(e.target === undefined ? {} : { target: e.target }),
            ...(details === undefined ? {} : { details }),
            prevHash: last?.hash ?? GENESIS_HASH,
          };
          const entry: AuditEntry = { ...unhashed, hash: hashAuditEntry(unhashed) };
          await entries.put(numericKey(entry.seq), entry);
          return entry;
        }),
      );
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
      return withStoreErrors('verify the audit log', () => verifyAuditChain(entries.values()));
    },
  };
}

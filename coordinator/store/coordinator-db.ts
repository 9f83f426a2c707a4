// Opens the coordinator's embedded LevelDB database, the one root every store hangs its sublevels
// on, and commits writes: every durable change is one atomic, fsync'd batch that carries the
// commit's sequence number and, when the change is audited, its audit entry; the durable head
// file beside the database then records that sequence number and the audit chain's head.
import { type BatchOperation, Level } from 'level';
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import {
  type DurableHead,
  levelRecoveryComplaints,
  readDamage,
  readHead,
  recordDamage,
  type StoreProblem,
  writeHead,
} from '../../shared/store/index.ts';
import { type AuditEntry, type AuditEvent, nextAuditEntry } from './audit-chain.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import { numericKey } from './numeric-key.ts';
import { SUBLEVEL } from './sublevels.ts';

/** The root LevelDB database: string keys, JSON values unless a sublevel says otherwise. */
export type RootLevel = Level<string, unknown>;

/** One write of a batch, on the root or on one of its sublevels. */
export type StoreOp = BatchOperation<RootLevel, string, unknown>;

/** Options of `CoordinatorDb.commit`. */
export interface CommitOptions {
  /** Audit entry to append in the same batch as the change it describes. */
  audit?: AuditEvent;
}

/** What a store's write may carry along into its batch: an audit entry, and other stores' writes. */
export interface WriteOptions extends CommitOptions {
  alongside?: readonly StoreOp[];
}

/** An open coordinator database. */
export interface CoordinatorDb {
  /** The root database; stores create their sublevels on it. */
  readonly root: RootLevel;
  /** The folder of the database (its LevelDB files, the head and damage records). */
  readonly dir: string;
  /**
   * Per-key locks shared by every store built on this database, so two store instances on the
   * same database still serialise their read-modify-write sequences against each other.
   */
  readonly locks: KeyedMutex;
  /** What LevelDB reported dropping while it recovered at this open, and damage recorded before. */
  readonly openProblems: readonly StoreProblem[];
  /** The head file as it was at open (undefined for a database that never committed). */
  readonly headAtOpen: DurableHead | undefined;
  /** Sequence number of the newest commit the database holds. */
  commitSeq(): number;
  /** The newest audit entry (undefined while the log is empty). */
  auditHead(): AuditEntry | undefined;
  /**
   * Writes `ops` (and the audit entry of `options.audit`) as one atomic batch that is durable
   * (fsync'd) when the promise resolves, then advances the head file. Commits are serialised.
   */
  commit(ops: readonly StoreOp[], options?: CommitOptions): Promise<{ audit?: AuditEntry }>;
  /** Closes the database; pending writes finish first. */
  close(): Promise<void>;
}

/** Options of `openCoordinatorDb`. */
export interface OpenCoordinatorDbOptions {
  /** Clock of audit entries. Default: the system clock. */
  now?: () => Date;
}

const COMMIT_LOCK = 'db:commit';
const SEQ_KEY = 'commitSeq';

/** True when `err` (or one of its causes) is LevelDB saying another process holds the lock. */
export function isLockHeld(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if ((e as { code?: unknown }).code === 'LEVEL_LOCKED') return true;
  }
  return false;
}

/**
 * Opens (creating if needed) the LevelDB database in `dir` with JSON values by default. LevelDB's
 * recovery complaints found at this open are recorded beside it at once, so they are still known
 * at the next start (LevelDB rewrites the damaged log as it opens). Throws LOOM_ERR_STORE when the
 * directory cannot be opened (for example, another process holds its lock).
 * @param options.now default the system clock
 */
export async function openCoordinatorDb(
  dir: string,
  options: OpenCoordinatorDbOptions = {},
): Promise<CoordinatorDb> {
  const now = options.now ?? (() => new Date());
  const root: RootLevel = new Level<string, unknown>(dir, { valueEncoding: 'json' });
  try {
    await root.open();
  } catch (err) {
    if (isLockHeld(err)) {
      throw new LoomError(
        'LOOM_ERR_STORE_LOCKED',
        `the database in ${dir} is in use by another process — is a coordinator already running on this data dir? Stop it first`,
        { cause: err },
      );
    }
    throw new LoomError('LOOM_ERR_STORE', `cannot open the coordinator database in ${dir}`, { cause: err });
  }
  const meta = root.sublevel<string, number>(SUBLEVEL.meta, { valueEncoding: 'json' });
  const audit = root.sublevel<string, AuditEntry>(SUBLEVEL.audit, { valueEncoding: 'json' });
  let seq: number;
  let lastAudit: AuditEntry | undefined;
  let headAtOpen: DurableHead | undefined;
  let openProblems: StoreProblem[];
  try {
    const complaints = (await levelRecoveryComplaints(dir)).map((line) => ({
      kind: 'level-recovery',
      message: `LevelDB dropped data it could not read while opening: ${line}`,
    }));
    await recordDamage(dir, complaints);
    openProblems = await readDamage(dir);
    headAtOpen = await readHead(dir);
    seq = (await meta.get(SEQ_KEY)) ?? 0;
    [lastAudit] = await audit.values({ reverse: true, limit: 1 }).all();
  } catch (err) {
    await root.close();
    throw isLoomError(err)
      ? err
      : new LoomError('LOOM_ERR_STORE', `cannot read the database in ${dir}`, { cause: err });
  }
  const locks = new KeyedMutex();

  return {
    root,
    dir,
    locks,
    openProblems,
    headAtOpen,
    commitSeq: () => seq,
    auditHead: () => lastAudit,
    commit(ops, commitOptions = {}) {
      return locks.run(COMMIT_LOCK, async () => {
        const next = seq + 1;
        const batch: StoreOp[] = [...ops, { type: 'put', sublevel: meta, key: SEQ_KEY, value: next }];
        const entry = commitOptions.audit ? nextAuditEntry(commitOptions.audit, lastAudit, now()) : undefined;
        if (entry) batch.push({ type: 'put', sublevel: audit, key: numericKey(entry.seq), value: entry });
        try {
          await root.batch(batch, { sync: true });
        } catch (err) {
          if (isLoomError(err)) throw err;
          throw new LoomError('LOOM_ERR_STORE', 'store failure while committing a write', { cause: err });
        }
        seq = next;
        if (entry) lastAudit = entry;
        // The batch is durable already; a head that cannot be written only weakens the next
        // start's check, so it does not turn a committed change into a failed call.
        await writeHead(dir, {
          commitSeq: next,
          ...(lastAudit ? { chains: { audit: { seq: lastAudit.seq, hash: lastAudit.hash } } } : {}),
          writtenAt: now().toISOString(),
        }).catch(() => undefined);
        return entry ? { audit: entry } : {};
      });
    },
    close: () => root.close(),
  };
}

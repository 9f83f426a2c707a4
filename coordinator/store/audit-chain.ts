// The audit chain: entries, their hashes and the check of a whole chain. It lives with the store
// because every change and its audit entry are written in one batch (CoordinatorDb.commit).
import { canonicalJson } from '../../shared/protocol/index.ts';
import { sha256Hex } from '../../shared/tensors/index.ts';

/** One audit entry. `hash` covers every other field, and `prevHash` links it to the entry before. */
export interface AuditEntry {
  /** 1 for the first entry, then consecutive. */
  seq: number;
  at: string;
  actor: string;
  action: string;
  target?: string;
  details?: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** What a caller supplies to be audited; the store fills in seq, time and hashes. */
export interface AuditEvent {
  actor: string;
  action: string;
  target?: string;
  details?: Record<string, unknown>;
}

/** Result of verifying the chain. */
export interface AuditVerification {
  ok: boolean;
  /** Number of entries in the log. */
  entries: number;
  /** `seq` of the first entry that does not verify, when `ok` is false. */
  brokenAt?: number;
  /** What is wrong, when `ok` is false. */
  reason?: string;
}

/** `prevHash` of the first entry: 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64);

/** Hex SHA-256 over the canonical JSON of every field of `entry` except `hash`. */
export function hashAuditEntry(entry: Omit<AuditEntry, 'hash'>): string {
  const { seq, at, actor, action, target, details, prevHash } = entry;
  return sha256Hex(canonicalJson({ seq, at, actor, action, target, details, prevHash }));
}

/** Throws a TypeError unless `e` is a usable audit event (the callers are Loom's own code). */
export function assertAuditEvent(e: AuditEvent): void {
  if (typeof e.actor !== 'string' || e.actor.length === 0)
    throw new TypeError('audit actor must be a non-empty string');
  if (typeof e.action !== 'string' || e.action.length === 0) {
    throw new TypeError('audit action must be a non-empty string');
  }
  if (e.target !== undefined && typeof e.target !== 'string')
    throw new TypeError('audit target must be a string');
  if (e.details !== undefined && (e.details === null || typeof e.details !== 'object')) {
    throw new TypeError('audit details must be an object');
  }
}

/** The entry that follows `previous` (or starts the chain) for `e`, stamped at `at`. */
export function nextAuditEntry(e: AuditEvent, previous: AuditEntry | undefined, at: Date): AuditEntry {
  assertAuditEvent(e);
  // Round-trip details through JSON first, so the hash covers exactly what is stored and read back.
  const details =
    e.details === undefined ? undefined : (JSON.parse(JSON.stringify(e.details)) as Record<string, unknown>);
  const unhashed: Omit<AuditEntry, 'hash'> = {
    seq: (previous?.seq ?? 0) + 1,
    at: at.toISOString(),
    actor: e.actor,
    action: e.action,
    ...(e.target === undefined ? {} : { target: e.target }),
    ...(details === undefined ? {} : { details }),
    prevHash: previous?.hash ?? GENESIS_HASH,
  };
  return { ...unhashed, hash: hashAuditEntry(unhashed) };
}

/**
 * Walks `entries` in storage order and reports the first one whose seq is not the next number,
 * whose `prevHash` is not its predecessor's hash, or whose `hash` does not match its content.
 * With `head` (the last entry as durably recorded), a chain that ends before it, or whose last
 * entry differs from it, is broken too: entries were lost from the end.
 */
export async function verifyAuditChain(
  entries: AsyncIterable<AuditEntry> | Iterable<AuditEntry>,
  head?: { seq: number; hash: string },
): Promise<AuditVerification> {
  let count = 0;
  let brokenAt: number | undefined;
  let reason: string | undefined;
  let prevHash = GENESIS_HASH;
  let last: AuditEntry | undefined;
  for await (const entry of entries) {
    count++;
    last = entry;
    if (brokenAt !== undefined) continue;
    if (entry.seq !== count || entry.prevHash !== prevHash || entry.hash !== hashAuditEntry(entry)) {
      // A missing entry shows up at the next seq, so count stands in for a seq that is wrong.
      brokenAt = entry.seq === count ? entry.seq : count;
      reason =
        entry.seq !== count
          ? `entry ${count} is missing (found seq ${entry.seq} in its place)`
          : entry.prevHash !== prevHash
            ? `entry ${entry.seq} does not link to the entry before it`
            : `entry ${entry.seq} does not match its hash`;
    }
    prevHash = entry.hash;
  }
  if (brokenAt === undefined && head !== undefined && head.seq > 0) {
    if ((last?.seq ?? 0) < head.seq) {
      brokenAt = (last?.seq ?? 0) + 1;
      reason = `the log ends at entry ${last?.seq ?? 0}, but entry ${head.seq} was recorded durably`;
    } else if (last && last.seq === head.seq && last.hash !== head.hash) {
      brokenAt = last.seq;
      reason = `entry ${last.seq} is not the entry that was recorded durably`;
    }
  }
  return brokenAt === undefined
    ? { ok: true, entries: count }
    : { ok: false, entries: count, brokenAt, ...(reason ? { reason } : {}) };
}

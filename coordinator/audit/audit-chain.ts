// Hashing and verification of the audit chain, independent of where entries are stored.

import { canonicalJson } from '../../shared/protocol/index.ts';
import { sha256Hex } from '../../shared/tensors/index.ts';
import type { AuditEntry, AuditVerification } from './audit-log.ts';

/** `prevHash` of the first entry: 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64);

/** Hex SHA-256 over the canonical JSON of every field of `entry` except `hash`. */
export function hashAuditEntry(entry: Omit<AuditEntry, 'hash'>): string {
  const { seq, at, actor, action, target, details, prevHash } = entry;
  return sha256Hex(canonicalJson({ seq, at, actor, action, target, details, prevHash }));
}

/**
 * Walks `entries` in storage order and reports the first one whose seq is not the next number,
 * whose `prevHash` is not its predecessor's hash, or whose `hash` does not match its content.
 */
export async function verifyAuditChain(
  entries: AsyncIterable<AuditEntry> | Iterable<AuditEntry>,
): Promise<AuditVerification> {
  let count = 0;
  let brokenAt: number | undefined;
  let prevHash = GENESIS_HASH;
  for await (const entry of entries) {
    count++;
    if (brokenAt !== undefined) continue;
    if (entry.seq !== count || entry.prevHash !== prevHash || entry.hash !== hashAuditEntry(entry)) {
      // A missing entry shows up at the next seq, so count stands in for a seq that is wrong.
      brokenAt = entry.seq === count ? entry.seq : count;
    }
    prevHash = entry.hash;
  }
  return brokenAt === undefined ? { ok: true, entries: count } : { ok: false, entries: count, brokenAt };
}

// The audit log contract: an append-only, hash-chained record of who did what.
import type { AuditEntry, AuditEvent, AuditVerification } from '../store/index.ts';

export type { AuditEntry, AuditEvent, AuditVerification };

/** Options of `AuditLog.list`. */
export interface AuditListOptions {
  /** Only entries with a `seq` greater than this. Default: 0 (from the start). */
  after?: number;
  /** Most entries returned. Default: 100. */
  limit?: number;
}

/**
 * A tamper-evident log: each entry hashes its predecessor's hash. Changes that are audited append
 * their entry in the same batch as the change (`CoordinatorDb.commit({audit})`); `append` is for
 * events that change nothing else.
 */
export interface AuditLog {
  /** Appends an entry after the current chain head. */
  append(e: AuditEvent): Promise<AuditEntry>;
  /** Entries in ascending `seq` order. */
  list(opts?: AuditListOptions): Promise<AuditEntry[]>;
  /**
   * Recomputes the chain and reports the first entry whose seq, link or hash is wrong, or the
   * first one missing from the end when the log is shorter than its durably recorded head.
   */
  verify(): Promise<AuditVerification>;
}

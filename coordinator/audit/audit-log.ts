// The audit log contract: an append-only, hash-chained record of who did what.

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

/** What a caller supplies to `append`; the log fills in seq, time and hashes. */
export interface AuditEvent {
  actor: string;
  action: string;
  target?: string;
  details?: Record<string, unknown>;
}

/** Options of `AuditLog.list`. */
export interface AuditListOptions {
  /** Only entries with a `seq` greater than this. Default: 0 (from the start). */
  after?: number;
  /** Most entries returned. Default: 100. */
  limit?: number;
}

/** Result of `AuditLog.verify`. */
export interface AuditVerification {
  ok: boolean;
  /** Number of entries in the log. */
  entries: number;
  /** `seq` of the first entry that does not verify, when `ok` is false. */
  brokenAt?: number;
}

/** A tamper-evident log: appends are serialised and each entry hashes its predecessor's hash. */
export interface AuditLog {
  /** Appends an entry after the current chain head (recovered from storage, so it survives restarts). */
  append(e: AuditEvent): Promise<AuditEntry>;
  /** Entries in ascending `seq` order. */
  list(opts?: AuditListOptions): Promise<AuditEntry[]>;
  /** Recomputes the chain and reports the first entry whose seq, link or hash is wrong. */
  verify(): Promise<AuditVerification>;
}

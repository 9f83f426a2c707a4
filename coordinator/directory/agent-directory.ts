// The agent directory contract: enrolled edge agents, their certificates and revocation state.
import type { StoreOp, WriteOptions } from '../store/index.ts';

/** An enrolled agent. Timestamps are ISO-8601 strings. */
export interface AgentRecord {
  id: string;
  name: string;
  enrolledAt: string;
  certSerial: string;
  certNotAfter: string;
  revoked: boolean;
  revokedAt?: string;
  lastSeen?: string;
  /** A renewed certificate not used yet; the current one stays valid until it is. */
  pendingCertSerial?: string;
  pendingCertNotAfter?: string;
  /** Compute backend the agent last reported (for example `wasm`). */
  backend?: string;
  /**
   * Model versions the coordinator deployed to this agent and the agent acknowledged: what the
   * fleet view shows, rather than what an agent claims to hold.
   */
  models?: Record<string, number>;
  /** Labels (`site`, `region`, `tier`, any key) given at enrollment or set by an operator. */
  labels?: Record<string, string>;
}

/** The fields `update` may change: everything but the id. */
export type AgentPatch = Partial<Omit<AgentRecord, 'id'>>;

/** Storage of enrolled agents. */
export interface AgentDirectory {
  /** Adds a new agent; LOOM_ERR_CONFLICT if the id is taken. */
  add(a: AgentRecord, options?: WriteOptions): Promise<void>;
  /**
   * The writes that add `a`, for another store to commit together with its own change (the
   * enrollment token spent on it); LOOM_ERR_CONFLICT if the id is taken.
   */
  addOps(a: AgentRecord): Promise<StoreOp[]>;
  /** LOOM_ERR_NOT_FOUND if there is no such agent. */
  get(id: string): Promise<AgentRecord>;
  /** The agent, or undefined if there is none. */
  find(id: string): Promise<AgentRecord | undefined>;
  /** All agents, sorted by id. */
  list(): Promise<AgentRecord[]>;
  /**
   * Applies `patch` (fields set to undefined are left as they are) and returns the new record;
   * LOOM_ERR_NOT_FOUND if absent. Not fsync'd: for frequent bookkeeping (last seen, backend, the
   * versions it runs) that a power cut may roll back a little without harm.
   */
  update(id: string, patch: AgentPatch): Promise<AgentRecord>;
  /** Marks the agent revoked at `at` (default: now), durably. Idempotent: revoking again keeps the first `revokedAt`. */
  revoke(id: string, at?: Date, options?: WriteOptions): Promise<AgentRecord>;
  /** Replaces the agent's labels, durably (with the audit entry of `options`). */
  setLabels(id: string, labels: Record<string, string>, options?: WriteOptions): Promise<AgentRecord>;
  /** Records a renewed certificate as pending (one write). */
  setPendingCertificate(id: string, serial: string, notAfter: string): Promise<AgentRecord>;
  /** Makes the pending certificate the current one, retiring the old (one write). */
  promotePendingCertificate(id: string): Promise<AgentRecord>;
}

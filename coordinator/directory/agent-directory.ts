// The agent directory contract: enrolled edge agents, their certificates and revocation state.

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
}

/** The fields `update` may change: everything but the id. */
export type AgentPatch = Partial<Omit<AgentRecord, 'id'>>;

/** Storage of enrolled agents. */
export interface AgentDirectory {
  /** Adds a new agent; LOOM_ERR_CONFLICT if the id is taken. */
  add(a: AgentRecord): Promise<void>;
  /** LOOM_ERR_NOT_FOUND if there is no such agent. */
  get(id: string): Promise<AgentRecord>;
  /** The agent, or undefined if there is none. */
  find(id: string): Promise<AgentRecord | undefined>;
  /** All agents, sorted by id. */
  list(): Promise<AgentRecord[]>;
  /** Applies `patch` (fields set to undefined are left as they are) and returns the new record; LOOM_ERR_NOT_FOUND if absent. */
  update(id: string, patch: AgentPatch): Promise<AgentRecord>;
  /** Marks the agent revoked at `at` (default: now). Idempotent: revoking again keeps the first `revokedAt`. */
  revoke(id: string, at?: Date): Promise<AgentRecord>;
  /** Records a renewed certificate as pending (one write). */
  setPendingCertificate(id: string, serial: string, notAfter: string): Promise<AgentRecord>;
  /** Makes the pending certificate the current one, retiring the old (one write). */
  promotePendingCertificate(id: string): Promise<AgentRecord>;
}

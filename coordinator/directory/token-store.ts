// The token store contract: one-time enrollment tokens and role-bearing API tokens. Every write is
// durable when it returns and may carry an audit entry and other stores' writes into its batch.
import type { WriteOptions } from '../store/index.ts';

/** Operator API roles, from most to least privileged. */
export type Role = 'admin' | 'operator' | 'viewer';

/** A one-time enrollment token; only a hash of its secret is stored. */
export interface EnrollmentTokenRecord {
  id: string;
  secretHash: string;
  expiresAt: string;
  createdAt: string;
  createdBy: string;
  usedAt?: string;
  usedBy?: string;
}

/** An operator API token; only its hash is stored. */
export interface ApiTokenRecord {
  id: string;
  hash: string;
  role: Role;
  name: string;
  createdAt: string;
  revoked?: boolean;
  /** When it was first revoked; set by `revokeApiToken`. */
  revokedAt?: string;
}

/** Storage of enrollment and API tokens. */
export interface TokenStore {
  /** Stores a new enrollment token; LOOM_ERR_CONFLICT if the id is taken. */
  addEnrollmentToken(t: EnrollmentTokenRecord, options?: WriteOptions): Promise<void>;
  /**
   * Atomically checks and consumes an enrollment token. Unknown, wrong secret, already used or
   * expired (at `now`, default the current time) → LOOM_ERR_TOKEN_INVALID with a message saying
   * which. The secret is checked by the caller's `matches(secretHash)`, so this module holds no
   * crypto policy; a wrong secret does not use the token up. On success sets `usedAt`/`usedBy` and
   * returns the updated record. Concurrent calls for one token are serialised, so only one wins.
   */
  consumeEnrollmentToken(
    id: string,
    matches: (secretHash: string) => boolean,
    usedBy: string,
    now?: Date,
    options?: WriteOptions,
  ): Promise<EnrollmentTokenRecord>;
  /**
   * The enrollment token, or undefined if there is none (or `id` is not a usable id). Read-only:
   * lets the caller refuse a bad token before doing expensive work; `consumeEnrollmentToken`
   * still decides atomically.
   */
  findEnrollmentToken(id: string): Promise<EnrollmentTokenRecord | undefined>;
  /** Stores a new API token; LOOM_ERR_CONFLICT if the id is taken. */
  addApiToken(t: ApiTokenRecord, options?: WriteOptions): Promise<void>;
  /** The API token, or undefined if there is none. */
  getApiToken(id: string): Promise<ApiTokenRecord | undefined>;
  /** All API tokens, sorted by id. */
  listApiTokens(): Promise<ApiTokenRecord[]>;
  /**
   * Revokes an API token and returns the updated record; revoking it again keeps the first
   * `revokedAt` (default `now` is the current time). LOOM_ERR_NOT_FOUND if there is no such token;
   * LOOM_ERR_CONFLICT if it is the last admin token not revoked, so the API always keeps an admin.
   * Revocations are serialised, so two concurrent calls cannot together remove the last admin.
   */
  revokeApiToken(id: string, now?: Date, options?: WriteOptions): Promise<ApiTokenRecord>;
}

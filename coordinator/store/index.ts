// Public door of coordinator/store.

export type { AuditEntry, AuditEvent, AuditVerification } from './audit-chain.ts';
export { GENESIS_HASH, hashAuditEntry, nextAuditEntry, verifyAuditChain } from './audit-chain.ts';
export type {
  CommitOptions,
  CoordinatorDb,
  OpenCoordinatorDbOptions,
  RootLevel,
  StoreOp,
  WriteOptions,
} from './coordinator-db.ts';
export { isLockHeld, openCoordinatorDb } from './coordinator-db.ts';
export { KeyedMutex } from './keyed-mutex.ts';
export { NUMERIC_KEY_WIDTH, numericKey, parseNumericKey } from './numeric-key.ts';
export { withStoreErrors } from './store-errors.ts';
export type { BinarySublevel, JsonSublevel, SublevelName } from './sublevels.ts';
export { binarySublevel, jsonSublevel, SUBLEVEL } from './sublevels.ts';

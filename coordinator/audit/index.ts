// Public door of coordinator/audit.

export { GENESIS_HASH, hashAuditEntry, verifyAuditChain } from './audit-chain.ts';
export type { AuditEntry, AuditEvent, AuditListOptions, AuditLog, AuditVerification } from './audit-log.ts';
export type { LevelAuditLogOptions } from './level-audit-log.ts';
export { createLevelAuditLog } from './level-audit-log.ts';

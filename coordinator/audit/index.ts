// Public door of coordinator/audit.

export type { AuditEntry, AuditEvent, AuditListOptions, AuditLog, AuditVerification } from './audit-log.ts';
export { createLevelAuditLog } from './level-audit-log.ts';

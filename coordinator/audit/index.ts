// Public door of coordinator/audit.

export type { AuditEntry, AuditEvent, AuditListOptions, AuditLog, AuditVerification } from './audit-log.ts';
export type { AuditReport } from './audit-report.ts';
export { auditReport } from './audit-report.ts';
export { createLevelAuditLog } from './level-audit-log.ts';

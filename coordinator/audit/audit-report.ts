// The check of a whole audit log as an operator reads it: the chain's verification and, when it is
// broken, the entry where it breaks.
import type { AuditEntry, AuditLog, AuditVerification } from './audit-log.ts';

/** `AuditLog.verify()` and the first broken entry as stored (absent when it is missing). */
export interface AuditReport extends AuditVerification {
  entry?: AuditEntry;
}

/** Verifies `audit` and, when the chain is broken, reads the entry it breaks at. */
export async function auditReport(audit: AuditLog): Promise<AuditReport> {
  const verification = await audit.verify();
  if (verification.ok || verification.brokenAt === undefined) return verification;
  const [entry] = await audit.list({ after: verification.brokenAt - 1, limit: 1 });
  return entry && entry.seq === verification.brokenAt ? { ...verification, entry } : verification;
}

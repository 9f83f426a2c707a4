// The audit log as `GET /v1/audit` pages it.
import { z } from 'zod';

export const AuditEntry = z
  .object({
    seq: z.int(),
    at: z.string(),
    actor: z.string(),
    action: z.string(),
    target: z.string().optional(),
    details: z.record(z.string(), z.unknown()).optional(),
    prevHash: z.string(),
    hash: z.string(),
  })
  .meta({ id: 'AuditEntry' });

export const AuditVerification = z
  .object({
    ok: z.boolean(),
    entries: z.int(),
    brokenAt: z.int().optional(),
    reason: z.string().optional(),
  })
  .meta({ id: 'AuditVerification' });

export const AuditPage = z.object({
  entries: z.array(AuditEntry),
  next: z.string().optional(),
  chain: AuditVerification,
});

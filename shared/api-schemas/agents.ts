// Agents, their labels, enrollment and enrollment tokens.
import { z } from 'zod';
import { LoomError } from '../errors/index.ts';
import { LABEL_LIMITS, parseLabels } from '../protocol/index.ts';
import { LabelMap, next } from './common.ts';
import { checkedBy, integer, strictBody, text } from './fields.ts';

/** JSON Schema of a label set, for the document (the check itself is `parseLabels`). */
const LABELS_JSON = {
  type: 'object',
  maxProperties: LABEL_LIMITS.labels,
  propertyNames: { pattern: '^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$' },
  additionalProperties: { type: 'string', minLength: 1, maxLength: LABEL_LIMITS.valueLength },
} as const;

/** A label set given by an operator, checked as `parseLabels` checks it, errors naming `field`. */
export function labelsInput(field: string) {
  return checkedBy<Record<string, string>, Record<string, string>>((raw) => parseLabels(raw, field), {
    ...LABELS_JSON,
    description: `Labels (at most ${LABEL_LIMITS.labels}): key to a printable value.`,
  });
}

/** An agent as `GET /v1/agents` and `GET /v1/agents/:id` show it. */
export const AgentView = z
  .object({
    id: z.string(),
    name: z.string(),
    online: z.boolean(),
    lastSeen: z.string().nullable(),
    connectedAt: z.string().nullable(),
    remoteAddress: z.string().nullable(),
    backend: z.string().nullable(),
    agentVersion: z.string().nullable(),
    examples: z.number().nullable(),
    revoked: z.boolean(),
    revokedAt: z.string().nullable(),
    enrolledAt: z.string(),
    certNotAfter: z.string(),
    models: z
      .record(z.string(), z.number())
      .meta({ description: 'Model name to the version the agent acknowledged.' }),
    labels: LabelMap,
  })
  .meta({ id: 'Agent' });

export const AgentList = z.object({ agents: z.array(AgentView), next });

/** `POST /v1/agents/:id/revoke`. */
export const RevokedAgent = AgentView.extend({
  disconnected: z.boolean().meta({ description: 'Whether it was connected and was cut off.' }),
}).meta({ id: 'RevokedAgent' });

/** `PUT /v1/agents/:id/labels`: the new label set. */
export const LabelsPutBody = strictBody({ labels: labelsInput('labels') });

/** `PATCH /v1/agents/:id/labels`: labels to set, a null value removing its key. */
export const LabelsPatchBody = strictBody({
  labels: checkedBy<Record<string, string | null>, Record<string, string | null>>(
    (raw) => {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'labels must be an object', {
          details: { field: 'labels' },
        });
      }
      const changes = Object.entries(raw as Record<string, unknown>);
      const removed = changes.filter(([, v]) => v === null).map(([k]) => [k, null] as const);
      const set = parseLabels(Object.fromEntries(changes.filter(([, v]) => v !== null)));
      return { ...set, ...Object.fromEntries(removed) };
    },
    {
      type: 'object',
      additionalProperties: { type: ['string', 'null'], maxLength: LABEL_LIMITS.valueLength },
      description: 'Labels to set; a null value removes the label.',
    },
  ),
});

/** `POST /v1/enrollment-tokens` (the body may be left out). */
export const EnrollmentTokenBody = strictBody({
  ttlSec: integer({ min: 1, max: 30 * 86_400 })
    .optional()
    .meta({ description: 'Seconds the token stays valid.' }),
});

export const EnrollmentTokenResponse = z
  .object({ token: z.string().meta({ description: 'One-time token, shown once.' }), expiresAt: z.string() })
  .meta({ id: 'EnrollmentToken' });

/** `POST /v1/enroll` (no bearer token: the enrollment token authenticates). */
export const EnrollBody = strictBody({
  token: text({ max: 512 }),
  csr: text({ max: 16_384 }).meta({ description: 'PEM certificate signing request.' }),
  // Control characters would make the audit log, the fleet view and CLI output misleading.
  name: text({ max: 64, pattern: /^\P{Cc}+$/u })
    .optional()
    .meta({ description: 'Site name (default "agent").' }),
  labels: labelsInput('labels').optional(),
});

export const EnrollResponse = z
  .object({
    agentId: z.string(),
    certificate: z.string(),
    caCertificate: z.string(),
    agentPort: z.int(),
  })
  .meta({ id: 'Enrollment' });

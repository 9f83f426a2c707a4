// Operator API tokens (admin only).
import { z } from 'zod';
import { next } from './common.ts';
import { oneOf, strictBody, text } from './fields.ts';

/** The roles a token may have, lowest last. */
export const ROLE_NAMES = ['admin', 'operator', 'viewer'] as const;
export const RoleSchema = oneOf(ROLE_NAMES);

/** `POST /v1/tokens`. */
export const TokenCreateBody = strictBody({
  // Control characters would make the audit log and CLI output misleading.
  name: text({ max: 64, pattern: /^\P{Cc}+$/u }),
  role: RoleSchema,
});

/** A token as the API shows it: never the secret, never its hash. */
export const TokenView = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.enum(ROLE_NAMES),
    createdAt: z.string(),
    revoked: z.boolean(),
    revokedAt: z.string().optional(),
  })
  .meta({ id: 'ApiToken' });

export const TokenList = z.object({ tokens: z.array(TokenView), next });

/** `POST /v1/tokens`: the only answer that carries the token itself. */
export const CreatedToken = z
  .object({ id: z.string(), token: z.string(), role: z.enum(ROLE_NAMES), name: z.string() })
  .meta({ id: 'CreatedApiToken' });

// Bearer-token authentication and role checks for the operator API.
import { createMiddleware } from 'hono/factory';
import { parseApiToken, secretMatches } from '../../certs/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import type { Role, TokenStore } from '../directory/index.ts';
import type { ApiEnv } from './context.ts';

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Requires `Authorization: Bearer <token>` naming a live API token; sets `caller`. */
export function bearerAuth(tokens: TokenStore) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match)
      throw new LoomError('LOOM_ERR_UNAUTHORIZED', 'missing bearer token (Authorization: Bearer <token>)');
    let parsed: { id: string; secret: string };
    try {
      parsed = parseApiToken(match[1]);
    } catch {
      throw new LoomError('LOOM_ERR_UNAUTHORIZED', 'invalid bearer token');
    }
    const record = await tokens.getApiToken(parsed.id);
    if (!record || record.revoked || !secretMatches(parsed.secret, record.hash)) {
      throw new LoomError('LOOM_ERR_UNAUTHORIZED', 'invalid bearer token');
    }
    c.set('caller', { tokenId: record.id, name: record.name, role: record.role });
    await next();
  });
}

/** Refuses callers below `role` with 403. */
export function requireRole(role: Role) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    const caller = c.get('caller');
    if (RANK[caller.role] < RANK[role]) {
      throw new LoomError(
        'LOOM_ERR_FORBIDDEN',
        `this call needs the ${role} role; the token has ${caller.role}`,
      );
    }
    await next();
  });
}

// /v1/tokens (admin only): create, list and revoke operator API tokens, so roles can be handed out
// without touching the database by hand.
import { Hono } from 'hono';
import { createApiToken } from '../../certs/index.ts';
import { FieldReader } from '../../shared/protocol/index.ts';
import type { ApiTokenRecord, Role } from '../directory/index.ts';
import { requireRole } from './auth.ts';
import type { ApiDeps, ApiEnv } from './context.ts';
import { readJsonBody } from './errors.ts';
import { page, readListQuery } from './list-query.ts';

const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];

/** A token as the API shows it: never the secret, never its hash. */
function publicView(t: ApiTokenRecord): Record<string, unknown> {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    createdAt: t.createdAt,
    revoked: t.revoked === true,
    ...(t.revokedAt ? { revokedAt: t.revokedAt } : {}),
  };
}

export function tokensRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.use('*', requireRole('admin'));

  app.post('/', async (c) => {
    const r = FieldReader.of(await readJsonBody(c), '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys([
      'name',
      'role',
    ]);
    // Control characters would make the audit log and CLI output misleading.
    const name = r.string('name', { max: 64, pattern: /^\P{Cc}+$/u });
    const role = r.string('role', { max: 16 });
    if (!ROLES.includes(role as Role)) r.fail('role', `must be one of ${ROLES.join(', ')}`);
    const t = createApiToken();
    const record: ApiTokenRecord = {
      id: t.id,
      hash: t.hash,
      role: role as Role,
      name,
      createdAt: new Date().toISOString(),
    };
    const caller = c.get('caller');
    await deps.tokens.addApiToken(record, {
      audit: { actor: caller.name, action: 'api-token.create', target: t.id, details: { name, role } },
    });
    deps.log.info('API token created', { token: t.id, role, by: caller.name });
    // The only time the token is shown; the store keeps its hash.
    return c.json({ id: t.id, token: t.token, role, name }, 201);
  });

  app.get('/', async (c) => {
    const query = readListQuery(c, { role: ROLES, revoked: 'boolean' });
    const { role, revoked } = query.filters;
    const tokens = (await deps.tokens.listApiTokens())
      .filter(
        (t) =>
          (role === undefined || t.role === role) &&
          (revoked === undefined || (t.revoked === true) === revoked),
      )
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const { items, next } = page(tokens, query, (t) => t.id);
    return c.json({ tokens: items.map(publicView), ...(next ? { next } : {}) });
  });

  app.post('/:id/revoke', async (c) => {
    const id = c.req.param('id');
    const caller = c.get('caller');
    const token = await deps.tokens.getApiToken(id);
    const revoked = await deps.tokens.revokeApiToken(id, new Date(), {
      audit: {
        actor: caller.name,
        action: 'api-token.revoke',
        target: id,
        ...(token ? { details: { name: token.name, role: token.role } } : {}),
      },
    });
    deps.log.warn('API token revoked', { token: id, by: caller.name });
    return c.json(publicView(revoked));
  });

  return app;
}

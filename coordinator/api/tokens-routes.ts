// /v1/tokens (admin only): create, list and revoke operator API tokens, so roles can be handed out
// without touching the database by hand.
import { createApiToken } from '../../certs/index.ts';
import {
  CreatedToken,
  IdParams,
  ROLE_NAMES,
  TokenCreateBody,
  TokenList,
  TokenView,
} from '../../shared/api-schemas/index.ts';
import type { ApiTokenRecord } from '../directory/index.ts';
import { requireRole } from './auth.ts';
import type { ApiDeps } from './context.ts';
import { page } from './list-query.ts';
import { type ApiRouter, apiRouter, defineRoute } from './route-spec.ts';

const ROLES = ROLE_NAMES;
const TAG = 'tokens';

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

export function tokensRoutes(deps: ApiDeps): ApiRouter {
  const app = apiRouter();
  // Every path under /v1/tokens is admin-only, routes or not.
  app.use('*', requireRole('admin'));

  defineRoute(
    app,
    {
      method: 'post',
      path: '/',
      summary: 'Create an operator API token',
      tag: TAG,
      role: 'admin',
      query: 'ignored',
      body: TokenCreateBody,
      responses: { 201: { description: 'The token (shown once)', schema: CreatedToken } },
    },
    async (c, { body }) => {
      const { name, role } = body;
      const t = createApiToken();
      const record: ApiTokenRecord = {
        id: t.id,
        hash: t.hash,
        role,
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
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/',
      summary: 'List API tokens, sorted by id (never a secret)',
      tag: TAG,
      role: 'admin',
      query: { filters: { role: ROLES, revoked: 'boolean' } },
      responses: { 200: { description: 'One page of tokens', schema: TokenList } },
    },
    async (c, { query }) => {
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
    },
  );

  defineRoute(
    app,
    {
      method: 'post',
      path: '/:id/revoke',
      summary: 'Revoke an API token (never the last admin token)',
      tag: TAG,
      role: 'admin',
      params: IdParams,
      query: 'ignored',
      responses: { 200: { description: 'The revoked token', schema: TokenView } },
    },
    async (c, { params }) => {
      const id = params.id;
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
    },
  );

  return app;
}

// The operator API as a Hono app (no server), so tests can call `app.request()` directly.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { LoomError } from '../../shared/errors/index.ts';
import { agentsRoutes, enrollmentTokenRoutes, enrollRoutes, revocationRoutes } from './agents-routes.ts';
import { bearerAuth } from './auth.ts';
import type { ApiDeps, ApiEnv } from './context.ts';
import { errorResponse, handleApiError } from './errors.ts';
import { jobsRoutes } from './jobs-routes.ts';
import { modelsRoutes } from './models-routes.ts';

export const API_DEFAULTS = {
  /** Largest request body (a model.json with initial weights can be large). */
  maxBodyBytes: 256 * 1024 * 1024,
} as const;

export function createApiApp(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.onError((err, c) => handleApiError(err, c, deps.log));
  app.notFound((c) => errorResponse(c, 404, 'LOOM_ERR_NOT_FOUND', `no route ${c.req.method} ${c.req.path}`));
  app.use(
    '*',
    bodyLimit({
      maxSize: API_DEFAULTS.maxBodyBytes,
      onError: () => {
        throw new LoomError(
          'LOOM_ERR_FRAME_TOO_LARGE',
          `request body exceeds ${API_DEFAULTS.maxBodyBytes} bytes`,
        );
      },
    }),
  );

  app.get('/healthz', (c) =>
    c.json({
      status: 'ok',
      backend: deps.backend(),
      agentsConnected: deps.gateway.onlineAgentIds().length,
      agentPort: deps.agentPort(),
    }),
  );
  app.route('/v1', enrollRoutes(deps));

  const v1 = new Hono<ApiEnv>();
  v1.use('*', bearerAuth(deps.tokens));
  v1.route('/enrollment-tokens', enrollmentTokenRoutes(deps));
  v1.route('/agents', agentsRoutes(deps));
  v1.route('/revocations', revocationRoutes(deps));
  v1.route('/models', modelsRoutes(deps));
  v1.route('/jobs', jobsRoutes(deps));
  v1.get('/audit', async (c) => {
    const after = Number(c.req.query('after') ?? 0);
    const limit = Number(c.req.query('limit') ?? 100);
    return c.json({ entries: await deps.audit.list({ after, limit }), chain: await deps.audit.verify() });
  });
  app.route('/v1', v1);
  return app;
}

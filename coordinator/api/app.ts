// The operator API as a Hono app (no server), so tests can call `app.request()` directly.
import type { Context } from 'hono';
import { AuditPage, HealthResponse, OpenApiResponse } from '../../shared/api-schemas/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { bodyLimit } from '../../shared/http/index.ts';
import { agentsRoutes, enrollmentTokenRoutes, enrollRoutes, revocationRoutes } from './agents-routes.ts';
import { bearerAuth } from './auth.ts';
import type { ApiDeps, ApiEnv } from './context.ts';
import { errorResponse, handleApiError } from './errors.ts';
import { evaluationsRoutes } from './evaluations-routes.ts';
import { jobsRoutes } from './jobs-routes.ts';
import { lifecycleRoutes } from './lifecycle-routes.ts';
import { modelsRoutes } from './models-routes.ts';
import { openApiDocument } from './openapi.ts';
import {
  FixedWindowRateLimiter,
  RATE_LIMIT_DEFAULTS,
  type RateLimitOptions,
  rateLimit,
} from './rate-limit.ts';
import { retirementRoutes, rolloutsRoutes } from './rollouts-routes.ts';
import { type ApiRouter, apiRouter, defineRoute } from './route-spec.ts';
import { tokensRoutes } from './tokens-routes.ts';

/** Options of `createApiApp`; every one has a default in `API_DEFAULTS`. */
export interface ApiOptions {
  /** Largest body of any request but a model upload. Default 65536 (64 KiB). */
  maxBodyBytes?: number;
  /** Largest body of `POST /v1/models` (a model.json with initial weights can be large). Default 268435456 (256 MiB). */
  maxModelBodyBytes?: number;
  /**
   * Largest weights a model may have: a task or an update must carry them (the coordinator's
   * `maxPayloadBytes`). Default 1 GiB.
   */
  maxModelBytes?: number;
  /**
   * Per-address limit on the unauthenticated `POST /v1/enroll`, or false for none.
   * Default 20 requests per address per minute (`RATE_LIMIT_DEFAULTS`).
   */
  enrollRateLimit?: RateLimitOptions | false;
}

/** Defaults of `ApiOptions`, and the cap on `GET /v1/audit?limit=`. */
export const API_DEFAULTS = {
  maxBodyBytes: 64 * 1024,
  maxModelBodyBytes: 256 * 1024 * 1024,
  maxModelBytes: 1024 * 1024 * 1024,
  enrollRateLimit: RATE_LIMIT_DEFAULTS,
  /** Most audit entries one `GET /v1/audit` returns; a larger `limit` is lowered to this. */
  maxAuditPage: 1000,
  /** Audit entries returned when `limit` is not given. */
  defaultAuditPage: 100,
} as const;

/** A whole number query parameter within [min, ∞), or `fallback` when absent; 400 otherwise. */
function queryInteger(c: Context<ApiEnv>, name: string, fallback: number, min: number): number {
  const raw = c.req.query(name);
  if (raw === undefined) return fallback;
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `${name} must be a whole number of at least ${min}`, {
      details: { field: name },
    });
  }
  return n;
}

/**
 * The operator API on `deps`.
 * @param options.maxBodyBytes default 65536
 * @param options.maxModelBodyBytes default 268435456
 * @param options.enrollRateLimit default 20 requests per address per minute
 */
export function createApiApp(deps: ApiDeps, options: ApiOptions = {}): ApiRouter {
  const maxBodyBytes = options.maxBodyBytes ?? API_DEFAULTS.maxBodyBytes;
  const maxModelBodyBytes = options.maxModelBodyBytes ?? API_DEFAULTS.maxModelBodyBytes;
  for (const [name, value] of Object.entries({ maxBodyBytes, maxModelBodyBytes })) {
    if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer`);
  }
  const enrollLimit = options.enrollRateLimit ?? API_DEFAULTS.enrollRateLimit;

  const app = apiRouter();
  app.onError((err, c) => handleApiError(err, c, deps.log));
  app.notFound((c) => errorResponse(c, 404, 'LOOM_ERR_NOT_FOUND', `no route ${c.req.method} ${c.req.path}`));
  // Only a model upload may be large; every other body, and above all the unauthenticated
  // /v1/enroll, is read under a small limit so nobody can make the server buffer much. Bodies
  // are read by the handlers (readBody), after authentication, whether sent with a
  // Content-Length or chunked.
  const smallBody = bodyLimit({ maxBytes: maxBodyBytes });
  const modelBody = bodyLimit({ maxBytes: maxModelBodyBytes });
  app.use('*', (c, next) =>
    c.req.method === 'POST' && c.req.path.replace(/\/$/, '') === '/v1/models'
      ? modelBody(c, next)
      : smallBody(c, next),
  );
  if (enrollLimit !== false) {
    // Registered as a POST handler that calls next(), so only the enroll call itself is counted.
    app.post('/v1/enroll', rateLimit(new FixedWindowRateLimiter(enrollLimit)));
  }

  defineRoute(
    app,
    {
      method: 'get',
      path: '/healthz',
      summary: 'Whether the coordinator runs, its backend and how many agents are connected',
      tag: 'service',
      role: 'public',
      query: 'ignored',
      responses: { 200: { description: 'Healthy', schema: HealthResponse } },
    },
    (c) =>
      c.json({
        status: 'ok',
        backend: deps.backend(),
        agentsConnected: deps.gateway.onlineAgentIds().length,
        agentPort: deps.agentPort(),
      }),
  );
  app.route('/v1', enrollRoutes(deps));

  const v1 = apiRouter();
  v1.use('*', bearerAuth(deps.tokens));
  v1.route('/enrollment-tokens', enrollmentTokenRoutes(deps));
  v1.route('/agents', agentsRoutes(deps));
  v1.route('/revocations', revocationRoutes(deps));
  v1.route('/models', modelsRoutes(deps, options.maxModelBytes ?? API_DEFAULTS.maxModelBytes));
  v1.route('/models', retirementRoutes(deps));
  v1.route('/rollouts', rolloutsRoutes(deps));
  v1.route('/models', evaluationsRoutes(deps));
  v1.route('/models', lifecycleRoutes(deps));
  v1.route('/jobs', jobsRoutes(deps));
  v1.route('/tokens', tokensRoutes(deps));
  defineRoute(
    v1,
    {
      method: 'get',
      path: '/audit',
      summary: 'Audit entries after seq `after`, and the check of the whole hash chain',
      tag: 'audit',
      query: { filters: { actor: 'string', action: 'string' } },
      responses: { 200: { description: 'One page of entries', schema: AuditPage } },
    },
    async (c, { query }) => {
      const { actor, action } = query.filters;
      const after = queryInteger(c, 'after', 0, 0);
      const limit = Math.min(
        queryInteger(c, 'limit', API_DEFAULTS.defaultAuditPage, 1),
        API_DEFAULTS.maxAuditPage,
      );
      // Filters apply within the page of `limit` entries after `after`, so paging stays by seq:
      // `next` is the last seq scanned whenever the page was full.
      const scanned = await deps.audit.list({ after, limit });
      const entries = scanned.filter(
        (e) => (actor === undefined || e.actor === actor) && (action === undefined || e.action === action),
      );
      const next = scanned.length === limit ? String(scanned[scanned.length - 1].seq) : undefined;
      return c.json({ entries, ...(next ? { next } : {}), chain: await deps.audit.verify() });
    },
  );
  // The document describes every route above, generated from their declarations. Any valid token
  // may read it: it tells a caller what the API accepts, nothing about the data behind it.
  let document: Record<string, unknown> | undefined;
  defineRoute(
    v1,
    {
      method: 'get',
      path: '/openapi.json',
      summary: 'This API as an OpenAPI 3.1 document, generated from its schemas',
      tag: 'service',
      responses: { 200: { description: 'The OpenAPI document', schema: OpenApiResponse } },
    },
    (c) => {
      document ??= openApiDocument(app);
      return c.json(document);
    },
  );
  app.route('/v1', v1);
  return app;
}

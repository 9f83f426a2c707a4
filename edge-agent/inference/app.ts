// The Open Inference Protocol v2 REST routes (the KServe/Triton predict protocol) as a Hono app.
import type { Context } from 'hono';
import { Hono } from 'hono';
import { LoomError } from '../../shared/errors/index.ts';
import { bodyLimit, readBody } from '../../shared/http/index.ts';
import { createLogger, type Logger } from '../../shared/log/index.ts';
import { errorResponse } from './errors.ts';
import { createInferHandler } from './infer.ts';
import { modelMetadata } from './metadata.ts';
import type { ModelServer } from './model-server.ts';
import { MAX_BODY_BYTES } from './request.ts';
import type { RetirementBook } from './retirements.ts';
import {
  AGENT_STATUS_HEADER,
  assertServing as assertServingFor,
  findLoaded,
  LOOM_VERSION,
  loadedVersions,
  parseVersion,
  type ServingRevocation,
} from './serving-rules.ts';
import type { ServingStats } from './serving-stats.ts';

export type { ServingRevocation } from './serving-rules.ts';
export { AGENT_STATUS_HEADER } from './serving-rules.ts';

/** Checks a request's credentials; throws LOOM_ERR_UNAUTHORIZED when they do not pass. */
export type InferenceAuthorizer = (authorization: string | undefined) => void;

/** Options of `createInferenceApp`. */
export interface InferenceAppOptions {
  /** Reported as `agent` in the server metadata. Default: not reported. */
  agentName?: string;
  /** Where unexpected errors are logged. Default: a stderr logger for component `inference`. */
  log?: Logger;
  /**
   * The agent's revocation, asked at every request; undefined while it is not revoked.
   * Default: never revoked.
   */
  revocation?: () => ServingRevocation | undefined;
  /**
   * Keeps answering predictions once revoked (responses then carry `Loom-Agent-Status:
   * revoked`). Default false: a revoked agent answers infer with 503 LOOM_ERR_CERT_REVOKED.
   */
  serveWhenRevoked?: boolean;
  /**
   * Checks the `Authorization` header of every route but `/v2/health/live` and
   * `/v2/health/ready`. Default: none, every route is open.
   */
  authorize?: InferenceAuthorizer;
  /** Where each prediction's outcome and latency are counted, per version. Default: not counted. */
  stats?: ServingStats;
  /**
   * Retired versions: a call that names one carries `Deprecation`, `Sunset` and a `Link` to the
   * successor during the grace period, and answers 410 after it. Default: none retired.
   */
  retirements?: RetirementBook;
}

/**
 * The inference API over `server`: `GET /v2`, `/v2/health/live`, `/v2/health/ready`,
 * `/v2/models/:name[/versions/:version]`, `/v2/models/:name[/versions/:version]/ready` and
 * `POST /v2/models/:name[/versions/:version]/infer`. A version named in the path that the
 * local store holds is loaded on demand for infer and metadata (ready reports only what is
 * loaded). Errors are `{error, code}` with status 400 (bad input), 401 (no or bad API key,
 * when `authorize` is given), 404 (unknown model, or a version the store does not hold), 413
 * (body over 16 MiB), 503 (nothing loaded, or the agent is revoked) or 500. While the agent is
 * revoked every answer carries `Loom-Agent-Status: revoked`, ready says so, and infer and
 * model readiness answer 503 LOOM_ERR_CERT_REVOKED unless `serveWhenRevoked`.
 */
export function createInferenceApp(server: ModelServer, opts: InferenceAppOptions = {}): Hono {
  const log = opts.log ?? createLogger({ component: 'inference' });
  const app = new Hono();

  app.onError((err, c) => errorResponse(c, err, log));
  app.notFound((c) =>
    errorResponse(c, new LoomError('LOOM_ERR_NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), log),
  );

  const revocation = opts.revocation ?? (() => undefined);
  const serveWhenRevoked = opts.serveWhenRevoked ?? false;
  app.use('*', async (c, next) => {
    // Set before the handler runs, so error answers (set by onError on this context) carry it too.
    if (revocation()) c.header(AGENT_STATUS_HEADER, 'revoked');
    await next();
  });
  const authorize = opts.authorize;
  if (authorize) {
    // Probes stay open: a health check must not need a key (and tells nothing about the models).
    app.use('*', async (c, next) => {
      if (c.req.path !== '/v2/health/live' && c.req.path !== '/v2/health/ready') {
        authorize(c.req.header('authorization'));
      }
      await next();
    });
  }
  /** Throws when a revoked agent must not serve; the error answers 503. */
  const assertServing = (): void => assertServingFor(revocation() !== undefined, serveWhenRevoked);

  app.get('/v2', (c) =>
    c.json({
      name: 'loom-edge',
      version: LOOM_VERSION,
      extensions: ['binary_tensor_data'],
      ...(opts.agentName ? { agent: opts.agentName } : {}),
    }),
  );
  app.get('/v2/health/live', (c) => c.json({ live: true }));
  app.get('/v2/health/ready', (c) => {
    const revoked = revocation();
    const status = revoked ? { revoked: true, revokedAt: revoked.revokedAt } : {};
    if (revoked && !serveWhenRevoked) return c.json({ ready: false, reason: 'revoked', ...status }, 503);
    return server.list().length > 0
      ? c.json({ ready: true, ...status })
      : c.json({ ready: false, ...status }, 503);
  });

  app.get('/v2/models/:name', (c) => {
    const name = c.req.param('name');
    return c.json(modelMetadata(findLoaded(server, name), loadedVersions(server, name)));
  });
  // A stored version is loaded for its metadata too: clients read it before their first infer.
  app.get('/v2/models/:name/versions/:version', async (c) => {
    const name = c.req.param('name');
    const served = await server.find(name, parseVersion(name, c.req.param('version')));
    return c.json(modelMetadata(served, loadedVersions(server, name)));
  });
  app.get('/v2/models/:name/ready', (c) => {
    assertServing();
    const served = findLoaded(server, c.req.param('name'));
    return c.json({ name: served.name, ready: true });
  });
  // Ready means loaded now; asking must not load a version.
  app.get('/v2/models/:name/versions/:version/ready', (c) => {
    assertServing();
    const name = c.req.param('name');
    const served = findLoaded(server, name, parseVersion(name, c.req.param('version')));
    return c.json({ name: served.name, ready: true });
  });

  // Read by the handler after the model is resolved, whether sent with a Content-Length or chunked.
  const limit = bodyLimit({ maxBytes: MAX_BODY_BYTES });

  const infer = createInferHandler(server, {
    revocation,
    serveWhenRevoked,
    ...(opts.stats ? { stats: opts.stats } : {}),
    ...(opts.retirements ? { retirements: opts.retirements } : {}),
  });
  const answer = async (c: Context, name: string, version: number | undefined): Promise<Response> => {
    const out = await infer({
      name,
      version,
      // Read only once the model is resolved: an unknown model is a 404 whatever the body holds.
      body: () => readBody(c),
      headerLength: c.req.header('inference-header-content-length'),
      setHeader: (k, v) => c.header(k, v),
    });
    return c.body(out.body as string, 200, { ...out.headers, 'content-type': out.contentType });
  };

  app.post('/v2/models/:name/infer', limit, (c) => answer(c, c.req.param('name'), undefined));
  app.post('/v2/models/:name/versions/:version/infer', limit, (c) => {
    const name = c.req.param('name');
    return answer(c, name, parseVersion(name, c.req.param('version')));
  });

  return app;
}

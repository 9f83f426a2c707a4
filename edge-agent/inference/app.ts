// The Open Inference Protocol v2 REST routes (the KServe/Triton predict protocol) as a Hono app.
import { createRequire } from 'node:module';
import type { Context } from 'hono';
import { Hono } from 'hono';
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import { bodyLimit, readBodyText } from '../../shared/http/index.ts';
import { createLogger, type Logger } from '../../shared/log/index.ts';
import { errorResponse } from './errors.ts';
import { modelMetadata } from './metadata.ts';
import type { ModelServer } from './model-server.ts';
import { MAX_BODY_BYTES, parseInferRequest } from './request.ts';
import type { RetirementBook } from './retirements.ts';
import type { ServingStats } from './serving-stats.ts';
import { runInTurn } from './turns.ts';
import type { ServedModel } from './types.ts';

/** The agent's revocation as the inference API reports it. */
export interface ServingRevocation {
  /** When the agent learnt of it (ISO 8601). */
  revokedAt: string;
}

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

/** The path of a model version on this API, as a `Link` names the successor. */
function versionPath(name: string, version: number): string {
  return `/v2/models/${encodeURIComponent(name)}/versions/${version}`;
}

/**
 * Refuses a retired version past its sunset (410, naming the successor), and marks one still in
 * its grace period with the RFC 9745 / RFC 8594 headers and a link to the successor.
 */
function applyRetirement(c: Context, book: RetirementBook | undefined, name: string, version: number): void {
  const r = book?.get(name, version);
  if (!r) return;
  const link = `<${versionPath(name, r.successor)}>; rel="successor-version"`;
  c.header('Link', link);
  if (Date.now() >= Date.parse(r.sunsetAt)) {
    throw new LoomError(
      'LOOM_ERR_VERSION_RETIRED',
      `model "${name}" version ${version} was retired on ${r.sunsetAt}; use version ${r.successor} (${versionPath(name, r.successor)})`,
      { details: { successor: r.successor } },
    );
  }
  c.header('Deprecation', `@${Math.floor(Date.parse(r.deprecatedAt) / 1000)}`);
  c.header('Sunset', new Date(r.sunsetAt).toUTCString());
}

/** Response header present on every answer of a revoked agent. */
export const AGENT_STATUS_HEADER = 'Loom-Agent-Status';

const LOOM_VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/** A version path segment; anything but a plain integer names no version. */
function parseVersion(name: string, text: string): number {
  const v = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(v))
    throw new LoomError('LOOM_ERR_NOT_FOUND', `model "${name}" has no version "${text}"`);
  return v;
}

/** The loaded model `name`@`version`, without loading anything; errors as a prediction gives. */
function findLoaded(server: ModelServer, name: string, version?: number): ServedModel {
  const served = server.get(name, version);
  if (served) return served;
  if (server.list().length === 0) throw new LoomError('LOOM_ERR_MODEL_UNAVAILABLE', 'no model is loaded yet');
  if (!server.get(name)) throw new LoomError('LOOM_ERR_NOT_FOUND', `model "${name}" is not loaded`);
  throw new LoomError('LOOM_ERR_NOT_FOUND', `model "${name}" version ${version} is not loaded`);
}

function loadedVersions(server: ModelServer, name: string): number[] {
  return server
    .list()
    .filter((m) => m.name === name)
    .map((m) => m.version)
    .sort((a, b) => a - b);
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
  const assertServing = (): void => {
    if (revocation() && !serveWhenRevoked) {
      throw new LoomError(
        'LOOM_ERR_CERT_REVOKED',
        'this agent has been revoked by its coordinator and no longer serves predictions',
      );
    }
  };

  app.get('/v2', (c) =>
    c.json({
      name: 'loom-edge',
      version: LOOM_VERSION,
      extensions: [],
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

  const infer = async (
    c: Context,
    name: string,
    version: number | undefined,
    readText: () => Promise<string>,
  ) => {
    assertServing();
    if (version !== undefined) applyRetirement(c, opts.retirements, name, version);
    // Resolve first: an unknown model is a 404 whatever the body holds. A version the local
    // store holds but that is not loaded is loaded now.
    const served = await server.find(name, version);
    if (version === undefined) applyRetirement(c, opts.retirements, name, served.version);
    const text = await readText();
    // Parsing takes a turn of its own: a 16 MiB body is a few hundred ms of JSON.parse at most,
    // and concurrent requests then parse one after another with the event loop between them.
    const req = await runInTurn(() => {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (err) {
        throw new LoomError(
          'LOOM_ERR_INFERENCE_INPUT',
          `request body is not valid JSON: ${(err as Error).message}`,
        );
      }
      return parseInferRequest(body, served.inputShape);
    });
    // Predict against the version resolved above; a swap meanwhile does not change the answer's shape.
    const began = performance.now();
    let result: Awaited<ReturnType<ModelServer['predict']>>;
    try {
      result = await server.predict(name, served.version, req.inputs, req.batch);
    } catch (err) {
      // A failure of the version itself counts against its health; the caller's bad input does not.
      const serverSide = !isLoomError(err) || err.httpStatus >= 500;
      if (serverSide) opts.stats?.record(name, served.version, performance.now() - began, true);
      throw err;
    }
    opts.stats?.record(name, result.version, performance.now() - began, false);
    const outputs = req.outputs.map((out) =>
      out === 'probabilities'
        ? {
            name: out,
            shape: [req.batch, served.classes],
            datatype: 'FP32',
            data: Array.from(result.probabilities),
          }
        : { name: out, shape: [req.batch, 1], datatype: 'INT64', data: Array.from(result.classes) },
    );
    return {
      ...(req.id === undefined ? {} : { id: req.id }),
      model_name: name,
      model_version: String(result.version),
      outputs,
    };
  };

  app.post('/v2/models/:name/infer', limit, async (c) => {
    const name = c.req.param('name');
    return c.json(await infer(c, name, undefined, () => readBodyText(c)));
  });
  app.post('/v2/models/:name/versions/:version/infer', limit, async (c) => {
    const name = c.req.param('name');
    return c.json(await infer(c, name, parseVersion(name, c.req.param('version')), () => readBodyText(c)));
  });

  return app;
}

// The hot routes of the inference API (infer, readiness, model metadata) served straight from
// Node's IncomingMessage/ServerResponse: no web Request, stream or AbortSignal per call. Every
// other request, and any path this file does not recognise exactly, goes to the Hono app, which
// serves the same routes with the same answers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readNodeBody } from '../../shared/http/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { InferenceAppOptions } from './app.ts';
import { errorAnswer } from './errors.ts';
import { createInferHandler } from './infer.ts';
import { modelMetadata } from './metadata.ts';
import type { ModelServer } from './model-server.ts';
import { MAX_BODY_BYTES } from './request.ts';
import {
  AGENT_STATUS_HEADER,
  assertServing,
  findLoaded,
  loadedVersions,
  parseVersion,
} from './serving-rules.ts';

/** A request header's value; a repeated header is a list, which no number parses from. */
function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/** Answers a request and returns true, or returns false (untouched) for the Hono app to serve. */
export type NodeRoutes = (req: IncomingMessage, res: ServerResponse) => boolean;

type Route =
  | { kind: 'live' }
  | { kind: 'ready' }
  | { kind: 'metadata' | 'model-ready' | 'infer'; name: string; version?: string };

const PREFIX = '/v2/models/';

/** The route of `method` `url`, or undefined when the Hono app should decide. */
function routeOf(method: string | undefined, url: string | undefined): Route | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  // Percent-encoded names and anything unusual are left to the router that decodes them.
  if (path.includes('%')) return undefined;
  if (method === 'GET') {
    if (path === '/v2/health/live') return { kind: 'live' };
    if (path === '/v2/health/ready') return { kind: 'ready' };
  }
  if (!path.startsWith(PREFIX)) return undefined;
  const parts = path.slice(PREFIX.length).split('/');
  const [name] = parts;
  if (!name) return undefined;
  let rest = parts.slice(1);
  let version: string | undefined;
  if (rest[0] === 'versions') {
    if (!rest[1]) return undefined;
    version = rest[1];
    rest = rest.slice(2);
  }
  const named = version === undefined ? { name } : { name, version };
  if (rest.length === 0 && method === 'GET') return { kind: 'metadata', ...named };
  if (rest.length === 1 && rest[0] === 'ready' && method === 'GET') return { kind: 'model-ready', ...named };
  if (rest.length === 1 && rest[0] === 'infer' && method === 'POST') return { kind: 'infer', ...named };
  return undefined;
}

/**
 * The Node fast path of `createInferenceApp(server, opts)`: the same statuses, bodies and
 * headers (the agent status header, API keys on every route but the health probes, retirement
 * headers, the body size limit with a drain of refused bodies).
 */
export function createNodeRoutes(server: ModelServer, opts: InferenceAppOptions, log: Logger): NodeRoutes {
  const revocation = opts.revocation ?? (() => undefined);
  const serveWhenRevoked = opts.serveWhenRevoked ?? false;
  const authorize = opts.authorize;
  const infer = createInferHandler(server, {
    revocation,
    serveWhenRevoked,
    ...(opts.stats ? { stats: opts.stats } : {}),
    ...(opts.retirements ? { retirements: opts.retirements } : {}),
  });

  const send = (
    res: ServerResponse,
    status: number,
    headers: Record<string, string>,
    contentType: string,
    body: string | Uint8Array,
  ): void => {
    if (res.headersSent || res.destroyed) return;
    headers['Content-Type'] = contentType;
    headers['Content-Length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
    res.writeHead(status, headers);
    res.end(body);
  };
  const sendJson = (res: ServerResponse, status: number, headers: Record<string, string>, value: unknown) =>
    send(res, status, headers, 'application/json', JSON.stringify(value));
  const fail = (req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, err: unknown) => {
    const answer = errorAnswer(err, log, req.method ?? '', req.url ?? '');
    sendJson(res, answer.status, { ...headers, ...answer.headers }, answer.body);
  };

  /** Answers `route`; synchronous routes answer before returning. */
  const serve = async (
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    headers: Record<string, string>,
  ): Promise<void> => {
    const revoked = revocation();
    if (revoked) headers[AGENT_STATUS_HEADER] = 'revoked';
    if (route.kind === 'live') return sendJson(res, 200, headers, { live: true });
    if (route.kind === 'ready') {
      const status = revoked ? { revoked: true, revokedAt: revoked.revokedAt } : {};
      if (revoked && !serveWhenRevoked)
        return sendJson(res, 503, headers, { ready: false, reason: 'revoked', ...status });
      return server.list().length > 0
        ? sendJson(res, 200, headers, { ready: true, ...status })
        : sendJson(res, 503, headers, { ready: false, ...status });
    }
    authorize?.(req.headers.authorization);
    const { name } = route;
    const version = route.version === undefined ? undefined : parseVersion(name, route.version);
    if (route.kind === 'metadata') {
      // A stored version is loaded for its metadata too: clients read it before their first infer.
      const served = version === undefined ? findLoaded(server, name) : await server.find(name, version);
      return sendJson(res, 200, headers, modelMetadata(served, loadedVersions(server, name)));
    }
    if (route.kind === 'model-ready') {
      assertServing(revoked !== undefined, serveWhenRevoked);
      // Ready means loaded now; asking must not load a version.
      const served = findLoaded(server, name, version);
      return sendJson(res, 200, headers, { name: served.name, ready: true });
    }
    const out = await infer({
      name,
      version,
      body: () => readNodeBody(req, res, { maxBytes: MAX_BODY_BYTES }),
      headerLength: headerValue(req.headers['inference-header-content-length']),
      setHeader: (k, v) => {
        headers[k] = v;
      },
    });
    send(res, 200, { ...headers, ...out.headers }, out.contentType, out.body);
  };

  return (req, res) => {
    const route = routeOf(req.method, req.url);
    if (!route) return false;
    const headers: Record<string, string> = {};
    serve(req, res, route, headers).catch((err: unknown) => fail(req, res, headers, err));
    return true;
  };
}

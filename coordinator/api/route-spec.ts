// One declaration per route: its method and path, who may call it, the schemas of its path
// parameters, query and body, and its answers. `defineRoute` registers the handler behind the
// role check and the validation those schemas give, and records the route in the app's OpenAPI
// registry, so the published document and the checks cannot drift apart.
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { ErrorResponse, type FilterSpec, parseBody, parseWith } from '../../shared/api-schemas/index.ts';
import { readBodyText } from '../../shared/http/index.ts';
import type { Role } from '../directory/index.ts';
import { requireRole } from './auth.ts';
import type { ApiEnv } from './context.ts';
import { readJsonBody } from './errors.ts';
import { type ListQuery, listQuerySchema, readListQuery, refuseQuery } from './list-query.ts';

/** A router whose routes carry their OpenAPI description; mount with `.route()` to merge it. */
export type ApiRouter = OpenAPIHono<ApiEnv>;

export function apiRouter(): ApiRouter {
  return new OpenAPIHono<ApiEnv>();
}

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** How a route reads its query: a list query with filters, none at all (refused), or not at all. */
export type QuerySpec<F extends Record<string, FilterSpec>> =
  | { filters: F; cursor?: boolean }
  | 'none'
  | 'ignored';

export interface RouteSpec<
  P extends z.ZodType | undefined,
  B extends z.ZodType | undefined,
  F extends Record<string, FilterSpec>,
> {
  method: Method;
  /** Hono path (`/:name/versions/:version`), relative to where the router is mounted. */
  path: string;
  summary: string;
  tag: string;
  /**
   * Lowest role allowed (default viewer, which any valid token has); `public` needs no token. The
   * token itself is checked by the bearerAuth middleware of the router every non-public route is
   * mounted under (`/v1`); this adds the role check and documents both.
   */
  role?: Role | 'public';
  params?: P;
  /** Default 'none': any query parameter is refused. */
  query?: QuerySpec<F>;
  body?: B;
  /** An empty body counts as `{}`. */
  bodyOptional?: boolean;
  /** Success answers by status; error answers (`Error`) are added for every route. */
  responses: Record<number, { description: string; schema?: z.ZodType; contentType?: string }>;
}

export interface RouteInput<P, B, F extends Record<string, FilterSpec>> {
  params: P;
  body: B;
  query: ListQuery<F>;
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

const ERROR_CONTENT = { 'application/json': { schema: ErrorResponse } };

/**
 * Registers `spec` on `app`: role check, then query, path parameters and body checked by their
 * schemas (each failure a 400 naming the field), then `handler` with the parsed input.
 */
export function defineRoute<
  P extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  F extends Record<string, FilterSpec> = Record<string, never>,
>(
  app: ApiRouter,
  spec: RouteSpec<P, B, F>,
  handler: (c: Context<ApiEnv>, input: RouteInput<Out<P>, Out<B>, F>) => Response | Promise<Response>,
): void {
  const role = spec.role ?? 'viewer';
  const query = spec.query ?? 'none';
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    responses[status] = {
      description: r.description,
      ...(r.schema ? { content: { [r.contentType ?? 'application/json']: { schema: r.schema } } } : {}),
    };
  }
  responses['400'] ??= { description: 'A parameter or the body is not valid', content: ERROR_CONTENT };
  if (role !== 'public') responses['401'] = { description: 'No valid bearer token', content: ERROR_CONTENT };
  if (role === 'operator' || role === 'admin') {
    responses['403'] = { description: `The token's role is below ${role}`, content: ERROR_CONTENT };
  }
  responses.default = { description: 'Any other failure', content: ERROR_CONTENT };
  app.openAPIRegistry.registerPath({
    method: spec.method,
    path: openApiPath(spec.path),
    summary: spec.summary,
    tags: [spec.tag],
    description: role === 'public' ? 'Needs no token.' : `Needs the ${role} role or above.`,
    ...(role === 'public' ? { security: [] } : { security: [{ bearerAuth: [] }] }),
    request: {
      ...(spec.params ? { params: spec.params as unknown as z.ZodObject } : {}),
      ...(typeof query === 'object' ? { query: listQuerySchema(query.filters, query) } : {}),
      ...(spec.body
        ? {
            body: {
              required: !spec.bodyOptional,
              content: { 'application/json': { schema: spec.body } },
            },
          }
        : {}),
    },
    responses: responses as never,
  });

  const middleware: MiddlewareHandler<ApiEnv>[] = [];
  if (role === 'operator' || role === 'admin') middleware.push(requireRole(role));
  app.on([spec.method.toUpperCase()], [spec.path], ...middleware, async (c: Context<ApiEnv>) => {
    let list = { limit: 0, filters: {} } as ListQuery<F>;
    if (query === 'none') refuseQuery(c);
    else if (query !== 'ignored') {
      list = readListQuery(c, query.filters, query.cursor === false ? { cursor: false } : {});
    }
    const params = spec.params ? parseWith(spec.params, c.req.param()) : undefined;
    let body: unknown;
    if (spec.body) {
      const empty = spec.bodyOptional && (await readBodyText(c)).trim() === '';
      body = parseBody(spec.body, empty ? {} : await readJsonBody(c));
    }
    return handler(c, { params, body, query: list } as RouteInput<Out<P>, Out<B>, F>);
  });
}

// The OpenAPI 3.1 document of the operator API, generated from the routes' declarations.
import type { ApiRouter } from './route-spec.ts';

/** The document's info block. */
export const OPENAPI_INFO = {
  title: 'Loom coordinator operator API',
  version: 'v1',
  description:
    'Federated training, the model registry and its lifecycle, rollouts to the edge. Every error ' +
    'answers `{"error": {"code", "message"}}` with a stable LOOM_ERR_ code and a message naming the field.',
} as const;

const withSecurity = new WeakSet<ApiRouter>();

/** The OpenAPI 3.1 document of every route registered on `app` (through `defineRoute`). */
export function openApiDocument(app: ApiRouter): Record<string, unknown> {
  if (!withSecurity.has(app)) withSecurity.add(app);
  else return generate(app);
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API token (`loom tokens create`); its role decides what it may call.',
  });
  return generate(app);
}

function generate(app: ApiRouter): Record<string, unknown> {
  const doc = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: { ...OPENAPI_INFO },
    security: [{ bearerAuth: [] }],
  });
  return doc as unknown as Record<string, unknown>;
}

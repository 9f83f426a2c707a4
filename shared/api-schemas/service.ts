// The service routes: health, the CA for pinning, the revocation list and this document.
import { z } from 'zod';

/** `GET /healthz`. */
export const HealthResponse = z
  .object({
    status: z.string(),
    backend: z.string().meta({ description: 'TensorFlow.js backend in use.' }),
    agentsConnected: z.int(),
    agentPort: z.int().meta({ description: 'Port of the agent gateway.' }),
  })
  .meta({ id: 'Health' });

/** `GET /v1/ca`. */
export const CaResponse = z
  .object({
    caCertificate: z.string().meta({ description: 'PEM of the Loom CA.' }),
    fingerprint: z.string().meta({ description: 'SHA-256 fingerprint of the CA certificate, to pin.' }),
  })
  .meta({ id: 'CaInfo' });

/** `GET /v1/revocations`. */
export const RevocationsResponse = z
  .object({
    agents: z.record(z.string(), z.string()).meta({ description: 'Agent id to when it was revoked.' }),
    serials: z.array(z.string()).meta({ description: 'Revoked certificate serials, lowercase hex.' }),
  })
  .meta({ id: 'RevocationList' });

/** `GET /v1/openapi.json`: an OpenAPI 3.1 document. */
export const OpenApiResponse = z.looseObject({
  openapi: z.string(),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.unknown()),
});

// /v1/agents and /v1/enrollment-tokens: the fleet as operators see it, revocation, and tokens
// for enrolling new sites.
import {
  AgentList,
  AgentView,
  CaResponse,
  EnrollBody,
  EnrollmentTokenBody,
  EnrollmentTokenResponse,
  EnrollResponse,
  ErrorResponse,
  IdParams,
  LabelsPatchBody,
  LabelsPutBody,
  RevocationsResponse,
  RevokedAgent,
} from '../../shared/api-schemas/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import {
  assertLabelValue,
  CLOSE_CODES,
  LABEL_LIMITS,
  matchesLabels,
  parseLabelPair,
} from '../../shared/protocol/index.ts';
import type { AgentRecord } from '../directory/index.ts';
import type { AgentSessionInfo } from '../gateway/index.ts';
import { type ApiDeps, remoteAddress } from './context.ts';
import { page } from './list-query.ts';
import { type ApiRouter, apiRouter, defineRoute } from './route-spec.ts';

/**
 * An agent as operators see it, the same in the list and alone: its record, whether it is
 * connected now, when it was last seen (now, while connected), and the model versions it
 * acknowledged receiving from this coordinator (never what it merely claims).
 */
export function agentView(a: AgentRecord, s: AgentSessionInfo | undefined): Record<string, unknown> {
  return {
    id: a.id,
    name: a.name,
    online: s !== undefined,
    lastSeen: s ? new Date().toISOString() : (a.lastSeen ?? null),
    connectedAt: s ? s.connectedAt.toISOString() : null,
    remoteAddress: s?.remoteAddress ?? null,
    backend: s?.backend ?? a.backend ?? null,
    agentVersion: s?.agentVersion ?? null,
    examples: s?.dataset.examples ?? null,
    revoked: a.revoked,
    revokedAt: a.revokedAt ?? null,
    enrolledAt: a.enrolledAt,
    certNotAfter: a.certNotAfter,
    models: a.models ?? {},
    labels: a.labels ?? {},
  };
}

const AGENT_FILTERS = { online: 'boolean', revoked: 'boolean', name: 'string', label: 'string' } as const;
const TAG = 'agents';

export function agentsRoutes(deps: ApiDeps): ApiRouter {
  const app = apiRouter();

  defineRoute(
    app,
    {
      method: 'get',
      path: '/',
      summary: 'List agents, sorted by id (filters: online, revoked, name, label=k=v)',
      tag: TAG,
      query: { filters: AGENT_FILTERS },
      responses: { 200: { description: 'One page of agents', schema: AgentList } },
    },
    async (c, { query }) => {
      const { online, revoked, name, label } = query.filters;
      const selector = label === undefined ? undefined : Object.fromEntries([parseLabelPair(label)]);
      const sessions = new Map(deps.gateway.sessionInfos().map((s) => [s.agentId, s]));
      const matching = (await deps.agents.list())
        .filter(
          (a) =>
            (online === undefined || sessions.has(a.id) === online) &&
            (revoked === undefined || a.revoked === revoked) &&
            (name === undefined || a.name === name) &&
            (selector === undefined || matchesLabels(a.labels, selector)),
        )
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const { items, next } = page(matching, query, (a) => a.id);
      return c.json({
        agents: items.map((a) => agentView(a, sessions.get(a.id))),
        ...(next ? { next } : {}),
      });
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/:id',
      summary: 'One agent',
      tag: TAG,
      params: IdParams,
      responses: { 200: { description: 'The agent', schema: AgentView } },
    },
    async (c, { params }) => {
      const a = await deps.agents.get(params.id);
      return c.json(agentView(a, deps.gateway.session(a.id)?.info));
    },
  );

  // PUT replaces the labels; PATCH merges them, a null value removing its key.
  defineRoute(
    app,
    {
      method: 'put',
      path: '/:id/labels',
      summary: "Replace an agent's labels",
      tag: TAG,
      role: 'operator',
      params: IdParams,
      body: LabelsPutBody,
      responses: { 200: { description: 'The agent with its new labels', schema: AgentView } },
    },
    async (c, { params, body }) =>
      c.json(await saveLabels(deps, c.get('caller').name, params.id, () => body.labels)),
  );
  defineRoute(
    app,
    {
      method: 'patch',
      path: '/:id/labels',
      summary: "Merge into an agent's labels (a null value removes the label)",
      tag: TAG,
      role: 'operator',
      params: IdParams,
      body: LabelsPatchBody,
      responses: { 200: { description: 'The agent with its new labels', schema: AgentView } },
    },
    async (c, { params, body }) =>
      c.json(
        await saveLabels(deps, c.get('caller').name, params.id, (current) => {
          const next: Record<string, string> = { ...current };
          for (const [k, v] of Object.entries(body.labels)) {
            if (v === null) delete next[k];
            else next[k] = v;
          }
          return next;
        }),
      ),
  );

  defineRoute(
    app,
    {
      method: 'post',
      path: '/:id/revoke',
      summary: 'Revoke an agent and disconnect it',
      tag: TAG,
      role: 'operator',
      params: IdParams,
      query: 'ignored',
      responses: { 200: { description: 'The revoked agent', schema: RevokedAgent } },
    },
    async (c, { params }) => {
      const id = params.id;
      const online = deps.gateway.session(id) !== undefined;
      const agent = await deps.agents.revoke(id, new Date(), {
        audit: { actor: c.get('caller').name, action: 'agent.revoke', target: id, details: { online } },
      });
      deps.revocations.revokeAgent(id, new Date(agent.revokedAt ?? Date.now()));
      deps.revocations.revokeSerial(agent.certSerial);
      const disconnected = deps.gateway.disconnect(id, CLOSE_CODES.REVOKED, 'certificate revoked');
      deps.log.warn('agent revoked', { agent: id, disconnected, by: c.get('caller').name });
      return c.json({ ...agentView(agent, undefined), disconnected });
    },
  );

  return app;
}

/** Writes an agent's new labels (computed from its current ones) with their audit entry. */
async function saveLabels(
  deps: ApiDeps,
  actor: string,
  id: string,
  next: (current: Record<string, string>) => Record<string, string>,
): Promise<Record<string, unknown>> {
  const current = await deps.agents.get(id);
  const labels = next(current.labels ?? {});
  if (Object.keys(labels).length > LABEL_LIMITS.labels) {
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      `labels must have at most ${LABEL_LIMITS.labels} labels`,
      {
        details: { field: 'labels' },
      },
    );
  }
  for (const [k, v] of Object.entries(labels)) assertLabelValue(v, `labels.${k}`);
  const agent = await deps.agents.setLabels(id, labels, {
    audit: { actor, action: 'agent.labels', target: id, details: { labels } },
  });
  return agentView(agent, deps.gateway.session(id)?.info);
}

/** The revocation list the gateway enforces: revoked agent ids and certificate serials. */
export function revocationRoutes(deps: ApiDeps): ApiRouter {
  const app = apiRouter();
  defineRoute(
    app,
    {
      method: 'get',
      path: '/',
      summary: 'The revocation list: revoked agent ids and certificate serials',
      tag: TAG,
      responses: { 200: { description: 'The revocation list', schema: RevocationsResponse } },
    },
    (c) => c.json(deps.revocations.toJSON()),
  );
  return app;
}

export function enrollmentTokenRoutes(deps: ApiDeps): ApiRouter {
  const app = apiRouter();
  defineRoute(
    app,
    {
      method: 'post',
      path: '/',
      summary: 'Create a one-time enrollment token for a new site',
      tag: 'enrollment',
      role: 'operator',
      query: 'ignored',
      body: EnrollmentTokenBody,
      bodyOptional: true,
      responses: { 201: { description: 'The token (shown once)', schema: EnrollmentTokenResponse } },
    },
    async (c, { body }) => {
      const t = await deps.enrollment.createToken(c.get('caller').name, body.ttlSec);
      return c.json({ token: t.token, expiresAt: t.expiresAt }, 201);
    },
  );
  return app;
}

/** Unauthenticated: the CA (for pinning) and token + CSR → certificate. */
export function enrollRoutes(deps: ApiDeps): ApiRouter {
  const app = apiRouter();
  defineRoute(
    app,
    {
      method: 'get',
      path: '/ca',
      summary: 'The Loom CA certificate and its fingerprint, for pinning',
      tag: 'enrollment',
      role: 'public',
      query: 'ignored',
      responses: { 200: { description: 'The CA', schema: CaResponse } },
    },
    (c) => c.json({ caCertificate: deps.caCertPem, fingerprint: deps.caFingerprint }),
  );
  defineRoute(
    app,
    {
      method: 'post',
      path: '/enroll',
      summary: 'Enroll a site: an enrollment token and a CSR for its client certificate',
      tag: 'enrollment',
      role: 'public',
      query: 'ignored',
      body: EnrollBody,
      responses: {
        201: { description: 'The certificate and where to connect', schema: EnrollResponse },
        429: { description: 'Too many enrollment calls from this address', schema: ErrorResponse },
      },
    },
    async (c, { body }) => {
      const name = body.name ?? 'agent';
      const result = await deps.enrollment.enroll(body.token, body.csr, name, {
        remote: remoteAddress(c),
        labels: body.labels ?? {},
      });
      deps.log.info('agent enrolled', { agent: result.agent.id, name });
      return c.json(
        {
          agentId: result.agent.id,
          certificate: result.certificate,
          caCertificate: result.caCertificate,
          agentPort: deps.agentPort(),
        },
        201,
      );
    },
  );
  return app;
}

// /v1/agents and /v1/enrollment-tokens: the fleet as operators see it, revocation, and tokens
// for enrolling new sites.
import { Hono } from 'hono';
import { LoomError } from '../../shared/errors/index.ts';
import { readBodyText } from '../../shared/http/index.ts';
import {
  assertLabelValue,
  CLOSE_CODES,
  FieldReader,
  LABEL_LIMITS,
  matchesLabels,
  parseLabelPair,
  parseLabels,
} from '../../shared/protocol/index.ts';
import type { AgentRecord } from '../directory/index.ts';
import type { AgentSessionInfo } from '../gateway/index.ts';
import { requireRole } from './auth.ts';
import { type ApiDeps, type ApiEnv, remoteAddress } from './context.ts';
import { readJsonBody } from './errors.ts';
import { page, readListQuery, refuseQuery } from './list-query.ts';

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

export function agentsRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.get('/', async (c) => {
    const query = readListQuery(c, AGENT_FILTERS);
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
    return c.json({ agents: items.map((a) => agentView(a, sessions.get(a.id))), ...(next ? { next } : {}) });
  });

  app.get('/:id', async (c) => {
    refuseQuery(c);
    const a = await deps.agents.get(c.req.param('id'));
    return c.json(agentView(a, deps.gateway.session(a.id)?.info));
  });

  // PUT replaces the labels; PATCH merges them, a null value removing its key.
  app.put('/:id/labels', requireRole('operator'), async (c) => {
    refuseQuery(c);
    const id = c.req.param('id');
    const r = FieldReader.of(await readJsonBody(c), '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys(['labels']);
    const labels = parseLabels(r.raw('labels'));
    return c.json(await saveLabels(deps, c.get('caller').name, id, () => labels));
  });
  app.patch('/:id/labels', requireRole('operator'), async (c) => {
    refuseQuery(c);
    const id = c.req.param('id');
    const r = FieldReader.of(await readJsonBody(c), '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys(['labels']);
    const raw = r.raw('labels');
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) r.fail('labels', 'must be an object');
    const changes = Object.entries(raw as Record<string, unknown>);
    const removed = changes.filter(([, v]) => v === null).map(([k]) => k);
    const set = parseLabels(Object.fromEntries(changes.filter(([, v]) => v !== null)));
    return c.json(
      await saveLabels(deps, c.get('caller').name, id, (current) => {
        const next = { ...current, ...set };
        for (const k of removed) delete next[k];
        return next;
      }),
    );
  });

  app.post('/:id/revoke', requireRole('operator'), async (c) => {
    const id = c.req.param('id');
    const online = deps.gateway.session(id) !== undefined;
    const agent = await deps.agents.revoke(id, new Date(), {
      audit: { actor: c.get('caller').name, action: 'agent.revoke', target: id, details: { online } },
    });
    deps.revocations.revokeAgent(id, new Date(agent.revokedAt ?? Date.now()));
    deps.revocations.revokeSerial(agent.certSerial);
    const disconnected = deps.gateway.disconnect(id, CLOSE_CODES.REVOKED, 'certificate revoked');
    deps.log.warn('agent revoked', { agent: id, disconnected, by: c.get('caller').name });
    return c.json({ ...agentView(agent, undefined), disconnected });
  });

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
export function revocationRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get('/', (c) => {
    refuseQuery(c);
    return c.json(deps.revocations.toJSON());
  });
  return app;
}

export function enrollmentTokenRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.post('/', requireRole('operator'), async (c) => {
    const body = (await readBodyText(c)).trim() ? await readJsonBody(c) : {};
    const r = FieldReader.of(body, '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys(['ttlSec']);
    const ttl = r.has('ttlSec') ? r.integer('ttlSec', { min: 1, max: 30 * 86_400 }) : undefined;
    const caller = c.get('caller');
    const t = await deps.enrollment.createToken(caller.name, ttl);
    return c.json({ token: t.token, expiresAt: t.expiresAt }, 201);
  });
  return app;
}

/** Unauthenticated: the CA (for pinning) and token + CSR → certificate. */
export function enrollRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get('/ca', (c) => c.json({ caCertificate: deps.caCertPem, fingerprint: deps.caFingerprint }));
  app.post('/enroll', async (c) => {
    const r = FieldReader.of(await readJsonBody(c), '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys([
      'token',
      'csr',
      'name',
      'labels',
    ]);
    const token = r.string('token', { max: 512 });
    const csr = r.string('csr', { max: 16_384 });
    // Control characters would make the audit log, the fleet view and CLI output misleading.
    const name = r.optionalString('name', { max: 64, pattern: /^\P{Cc}+$/u }) ?? 'agent';
    const labels = r.has('labels') ? parseLabels(r.raw('labels')) : {};
    const result = await deps.enrollment.enroll(token, csr, name, { remote: remoteAddress(c), labels });
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
  });
  return app;
}

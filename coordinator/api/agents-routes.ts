// /v1/agents and /v1/enrollment-tokens: the fleet as operators see it, revocation, and tokens
// for enrolling new sites.
import { Hono } from 'hono';
import { readBodyText } from '../../shared/http/index.ts';
import { CLOSE_CODES, FieldReader } from '../../shared/protocol/index.ts';
import { requireRole } from './auth.ts';
import { type ApiDeps, type ApiEnv, remoteAddress } from './context.ts';
import { readJsonBody } from './errors.ts';

export function agentsRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.get('/', async (c) => {
    const sessions = new Map(deps.gateway.sessionInfos().map((s) => [s.agentId, s]));
    const agents = (await deps.agents.list()).map((a) => {
      const s = sessions.get(a.id);
      return {
        id: a.id,
        name: a.name,
        online: s !== undefined,
        lastSeen: s ? new Date().toISOString() : (a.lastSeen ?? null),
        backend: s?.backend ?? a.backend ?? null,
        revoked: a.revoked,
        enrolledAt: a.enrolledAt,
        certNotAfter: a.certNotAfter,
        models: s ? Object.fromEntries(s.models) : {},
      };
    });
    return c.json({ agents });
  });

  app.get('/:id', async (c) => {
    const a = await deps.agents.get(c.req.param('id'));
    const s = deps.gateway.session(a.id)?.info;
    return c.json({ ...a, online: s !== undefined, backend: s?.backend ?? a.backend ?? null });
  });

  app.post('/:id/revoke', requireRole('operator'), async (c) => {
    const id = c.req.param('id');
    const agent = await deps.agents.revoke(id);
    deps.revocations.revokeAgent(id, new Date(agent.revokedAt ?? Date.now()));
    deps.revocations.revokeSerial(agent.certSerial);
    const disconnected = deps.gateway.disconnect(id, CLOSE_CODES.REVOKED, 'certificate revoked');
    await deps.audit.append({
      actor: c.get('caller').name,
      action: 'agent.revoke',
      target: id,
      details: { disconnected },
    });
    deps.log.warn('agent revoked', { agent: id, disconnected, by: c.get('caller').name });
    return c.json({ ...agent, disconnected });
  });

  return app;
}

/** The revocation list the gateway enforces: revoked agent ids and certificate serials. */
export function revocationRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get('/', (c) => c.json(deps.revocations.toJSON()));
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
    await deps.audit.append({ actor: caller.name, action: 'enrollment-token.create', target: t.id });
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
    ]);
    const token = r.string('token', { max: 512 });
    const csr = r.string('csr', { max: 16_384 });
    // Control characters would make the audit log, the fleet view and CLI output misleading.
    const name = r.optionalString('name', { max: 64, pattern: /^\P{Cc}+$/u }) ?? 'agent';
    const result = await deps.enrollment.enroll(token, csr, name);
    await deps.audit.append({
      actor: `enrollment:${result.agent.id}`,
      action: 'agent.enroll',
      target: result.agent.id,
      // The socket's peer, not X-Forwarded-For: a header any client can forge has no place in the audit log.
      details: { name, remote: remoteAddress(c) ?? null },
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
  });
  return app;
}

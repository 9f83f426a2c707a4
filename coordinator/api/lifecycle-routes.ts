// /v1/models/:name/…: a version's stage, tags and description, and the model's aliases. Viewers
// read, operators change, admins force. A `:version` may be an alias (`.../versions/champion`).
import { Hono } from 'hono';
import { LoomError } from '../../shared/errors/index.ts';
import { FieldReader } from '../../shared/protocol/index.ts';
import { parsePromotionPolicy, STAGES, type Stage } from '../lifecycle/index.ts';
import { parseRolloutPlan } from '../rollouts/index.ts';
import { requireRole } from './auth.ts';
import type { ApiDeps, ApiEnv } from './context.ts';
import { readJsonBody } from './errors.ts';
import { refuseQuery } from './list-query.ts';

const TAG_KEY = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;

export function lifecycleRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.patch('/:name/versions/:version', requireRole('operator'), async (c) => {
    refuseQuery(c);
    const name = c.req.param('name');
    const version = await deps.lifecycle.resolve(name, c.req.param('version'));
    const r = FieldReader.of(await readJsonBody(c), '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys([
      'description',
      'tags',
    ]);
    const patch: { description?: string; tags?: Record<string, string | null> } = {};
    if (r.has('description')) patch.description = r.string('description', { max: 4096, min: 0 });
    if (r.has('tags')) {
      const t = r.object('tags');
      const raw = r.raw('tags') as Record<string, unknown>;
      const keys = Object.keys(raw);
      if (keys.length > 64) r.fail('tags', 'must have at most 64 entries');
      patch.tags = {};
      for (const k of keys) {
        if (!TAG_KEY.test(k)) r.fail('tags', `key "${k.slice(0, 80)}" must match ${TAG_KEY}`);
        patch.tags[k] = raw[k] === null ? null : t.string(k, { max: 256, min: 0 });
      }
    }
    if (patch.description === undefined && patch.tags === undefined) {
      r.fail('body', 'must set description or tags');
    }
    return c.json(await deps.lifecycle.update(name, version, patch, c.get('caller').name));
  });

  app.post('/:name/versions/:version/stage', requireRole('operator'), async (c) => {
    refuseQuery(c);
    const name = c.req.param('name');
    const version = await deps.lifecycle.resolve(name, c.req.param('version'));
    const r = FieldReader.of(await readJsonBody(c), '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys([
      'stage',
      'force',
      'reason',
      'rollout',
    ]);
    const stage = r.string('stage', { max: 32 });
    if (!STAGES.includes(stage as Stage)) r.fail('stage', `must be one of ${STAGES.join(', ')}`);
    const force = r.optionalBoolean('force') ?? false;
    const reason = r.optionalString('reason', { max: 1024 });
    const caller = c.get('caller');
    if (force && caller.role !== 'admin') {
      throw new LoomError('LOOM_ERR_FORBIDDEN', `force needs the admin role; the token has ${caller.role}`);
    }
    if (force && !reason) r.fail('reason', 'is required with force: the audit log records why');
    const rollout = r.has('rollout') ? parseRolloutPlan(r.raw('rollout'), 'rollout') : undefined;
    if (rollout && stage !== 'production') r.fail('rollout', 'is for a promotion to production');
    return c.json(
      await deps.lifecycle.setStage(name, version, stage as Stage, {
        actor: caller.name,
        force,
        ...(reason ? { reason } : {}),
        ...(rollout ? { rollout } : {}),
      }),
    );
  });

  app.get('/:name/policy', async (c) => {
    refuseQuery(c);
    const policy = await deps.lifecycle.policy(c.req.param('name'));
    return c.json({ policy: policy ?? null });
  });

  app.put('/:name/policy', requireRole('operator'), async (c) => {
    refuseQuery(c);
    const policy = parsePromotionPolicy(await readJsonBody(c));
    return c.json({
      policy: await deps.lifecycle.setPolicy(c.req.param('name'), policy, c.get('caller').name),
    });
  });

  app.get('/:name/aliases', async (c) => {
    refuseQuery(c);
    const name = c.req.param('name');
    await deps.registry.getModel(name);
    return c.json({ aliases: await deps.lifecycle.aliases(name) });
  });

  app.put('/:name/aliases/:alias', requireRole('operator'), async (c) => {
    refuseQuery(c);
    const name = c.req.param('name');
    const r = FieldReader.of(await readJsonBody(c), '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys(['version']);
    const version = r.integer('version', { min: 1 });
    return c.json(await deps.lifecycle.setAlias(name, c.req.param('alias'), version, c.get('caller').name));
  });

  app.delete('/:name/aliases/:alias', requireRole('operator'), async (c) => {
    refuseQuery(c);
    await deps.lifecycle.deleteAlias(c.req.param('name'), c.req.param('alias'), c.get('caller').name);
    return c.body(null, 204);
  });

  return app;
}

// /v1/rollouts: staged, health-gated rollouts of a model version to the edge, and
// /v1/models/:name/versions/:version/retire: retirement of a version in favour of a successor.
import { Hono } from 'hono';
import { readBodyText } from '../../shared/http/index.ts';
import { FieldReader } from '../../shared/protocol/index.ts';
import { parseRolloutRequest, RETIREMENT_DEFAULTS } from '../rollouts/index.ts';
import { requireRole } from './auth.ts';
import type { ApiDeps, ApiEnv } from './context.ts';
import { readJsonBody } from './errors.ts';
import { readListQuery, refuseQuery } from './list-query.ts';

const ROLLOUT_FILTERS = {
  model: 'string',
  state: ['running', 'paused', 'completed', 'rolled-back'],
} as const;

/** An action on a rollout takes no body (an empty one, or `{}`). */
async function noBody(c: Parameters<typeof readBodyText>[0]): Promise<void> {
  const text = (await readBodyText(c)).trim();
  if (text === '') return;
  FieldReader.of(await readJsonBody(c), '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys([]);
}

export function rolloutsRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/', requireRole('operator'), async (c) => {
    refuseQuery(c);
    const req = parseRolloutRequest(await readJsonBody(c));
    return c.json(await deps.rollouts.create(req, c.get('caller').name), 201);
  });

  app.get('/', async (c) => {
    const query = readListQuery(c, ROLLOUT_FILTERS, { cursor: false });
    const { model, state } = query.filters;
    const all = (await deps.rollouts.list()).filter(
      (r) => (model === undefined || r.model === model) && (state === undefined || r.state === state),
    );
    return c.json({ rollouts: all.slice(0, query.limit) });
  });

  app.get('/:id', async (c) => {
    refuseQuery(c);
    return c.json(await deps.rollouts.get(c.req.param('id')));
  });

  for (const action of ['pause', 'resume', 'rollback'] as const) {
    app.post(`/:id/${action}`, requireRole('operator'), async (c) => {
      refuseQuery(c);
      await noBody(c);
      const id = c.req.param('id');
      const caller = c.get('caller').name;
      return c.json(await deps.rollouts[action](id, caller));
    });
  }
  return app;
}

/** Mounted under /v1/models beside the model routes. */
export function retirementRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.post('/:name/versions/:version/retire', requireRole('operator'), async (c) => {
    refuseQuery(c);
    const r = FieldReader.of(await readJsonBody(c), '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys([
      'successor',
      'graceSec',
    ]);
    const successor = r.integer('successor', { min: 1 });
    const graceSec = r.has('graceSec')
      ? r.integer('graceSec', { min: 0, max: RETIREMENT_DEFAULTS.maxGraceSec })
      : undefined;
    const version = versionParam(c.req.param('version'));
    const record = await deps.retirements.retire(
      c.req.param('name'),
      version,
      { successor, ...(graceSec === undefined ? {} : { graceSec }) },
      c.get('caller').name,
    );
    return c.json(record, 201);
  });
  app.get('/:name/retirements', async (c) => {
    refuseQuery(c);
    const name = c.req.param('name');
    await deps.registry.getModel(name);
    return c.json({ retirements: (await deps.retirements.list()).filter((r) => r.model === name) });
  });
  return app;
}

function versionParam(raw: string): number {
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    FieldReader.of({}, '', 'LOOM_ERR_INVALID_ARGUMENT').fail(
      'version',
      `"${raw.slice(0, 40)}" is not a positive integer`,
    );
  }
  return n;
}

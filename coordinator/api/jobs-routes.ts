// /v1/jobs: start, list, inspect and cancel federated training jobs.
import { Hono } from 'hono';
import { parseJobConfig } from '../jobs/index.ts';
import { requireRole } from './auth.ts';
import type { ApiDeps, ApiEnv } from './context.ts';
import { readJsonBody } from './errors.ts';

export function jobsRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/', requireRole('operator'), async (c) => {
    const config = parseJobConfig(await readJsonBody(c));
    const caller = c.get('caller');
    const job = await deps.jobs.create(config, caller.name);
    await deps.audit.append({
      actor: caller.name,
      action: 'job.create',
      target: job.id,
      details: { ...config },
    });
    return c.json(job, 201);
  });

  app.get('/', async (c) => c.json({ jobs: await deps.jobs.list() }));

  app.get('/:id', async (c) => c.json(await deps.jobs.get(c.req.param('id'))));

  app.post('/:id/cancel', requireRole('operator'), async (c) => {
    const id = c.req.param('id');
    const job = await deps.jobs.cancel(id);
    await deps.audit.append({ actor: c.get('caller').name, action: 'job.cancel', target: id });
    return c.json(job);
  });

  return app;
}

// /v1/models/:name/…/evaluations: start a federated evaluation of a version on the sites' hold-out
// data, read one with its per-site results, and the cross-site matrix (version × agent).
import { Hono } from 'hono';
import { LoomError } from '../../shared/errors/index.ts';
import { type EvaluationRecord, evaluationMatrix, parseEvaluationRequest } from '../evaluations/index.ts';
import { requireRole } from './auth.ts';
import type { ApiDeps, ApiEnv } from './context.ts';
import { readJsonBody } from './errors.ts';
import { page, readListQuery, refuseQuery } from './list-query.ts';
import { versionParam } from './models-routes.ts';

const EVALUATION_STATES = ['running', 'completed', 'failed', 'cancelled'] as const;

/** An evaluation in a list: its figures without the per-site detail. */
function summary(e: EvaluationRecord): Omit<EvaluationRecord, 'results' | 'failures'> & {
  sites: number;
  failures: number;
} {
  const { results, failures, ...rest } = e;
  return { ...rest, sites: results.length, failures: failures.length };
}

export function evaluationsRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/:name/versions/:version/evaluations', requireRole('operator'), async (c) => {
    refuseQuery(c);
    const name = c.req.param('name');
    const version = await deps.lifecycle.resolve(name, c.req.param('version'));
    const request = parseEvaluationRequest(await readJsonBody(c));
    // Named agents must be enrolled and not revoked: a typo would otherwise wait out the timeout.
    for (const id of request.agents ?? []) {
      const agent = await deps.agents.find(id);
      if (!agent) {
        throw new LoomError('LOOM_ERR_NOT_FOUND', `agents: no agent ${id} is enrolled`, {
          details: { field: 'agents', agent: id },
        });
      }
      if (agent.revoked) {
        throw new LoomError('LOOM_ERR_CONFLICT', `agents: agent ${id} is revoked`, {
          details: { field: 'agents', agent: id },
        });
      }
    }
    const record = await deps.evaluations.start(name, version, request, { actor: c.get('caller').name });
    return c.json(record, 202);
  });

  app.get('/:name/evaluations', async (c) => {
    const query = readListQuery(c, { state: EVALUATION_STATES, version: 'string' });
    const name = c.req.param('name');
    const all = await deps.evaluations.list(name);
    const version = query.filters.version === undefined ? undefined : versionParam(query.filters.version);
    const listed = all.filter(
      (e) =>
        (query.filters.state === undefined || e.state === query.filters.state) &&
        (version === undefined || e.version === version),
    );
    const { items, next } = page(listed, query, (e) => e.id, true);
    return c.json({
      matrix: evaluationMatrix(name, all),
      evaluations: items.map(summary),
      ...(next ? { next } : {}),
    });
  });

  app.get('/:name/evaluations/:id', async (c) => {
    refuseQuery(c);
    return c.json(await deps.evaluations.get(c.req.param('name'), c.req.param('id')));
  });

  return app;
}

// /v1/models/:name/…/evaluations: start a federated evaluation of a version on the sites' hold-out
// data, read one with its per-site results, and the cross-site matrix (version × agent).
import { z } from 'zod';
import {
  EvaluationBody,
  EvaluationList,
  EvaluationRecord as EvaluationSchema,
  evaluationListFilters,
  ModelParams,
  VersionRefParams,
  versionOf,
} from '../../shared/api-schemas/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { type EvaluationRecord, evaluationMatrix, evaluationRequestOf } from '../evaluations/index.ts';
import type { ApiDeps } from './context.ts';
import { page } from './list-query.ts';
import { type ApiRouter, apiRouter, defineRoute } from './route-spec.ts';

const TAG = 'evaluations';

/** An evaluation in a list: its figures without the per-site detail. */
function summary(e: EvaluationRecord): Omit<EvaluationRecord, 'results' | 'failures'> & {
  sites: number;
  failures: number;
} {
  const { results, failures, ...rest } = e;
  return { ...rest, sites: results.length, failures: failures.length };
}

export function evaluationsRoutes(deps: ApiDeps): ApiRouter {
  const app = apiRouter();

  defineRoute(
    app,
    {
      method: 'post',
      path: '/:name/versions/:version/evaluations',
      summary: "Start a federated evaluation of a version on the sites' hold-out data",
      tag: TAG,
      role: 'operator',
      params: VersionRefParams,
      body: EvaluationBody,
      responses: { 202: { description: 'The evaluation, running', schema: EvaluationSchema } },
    },
    async (c, { params, body }) => {
      const name = params.name;
      const version = await deps.lifecycle.resolve(name, params.version);
      const request = evaluationRequestOf(body);
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
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/:name/evaluations',
      summary: "A model's evaluations, newest first, and its cross-site matrix (version × agent)",
      tag: TAG,
      params: ModelParams,
      query: { filters: evaluationListFilters },
      responses: { 200: { description: 'The matrix and one page of evaluations', schema: EvaluationList } },
    },
    async (c, { params, query }) => {
      const name = params.name;
      const all = await deps.evaluations.list(name);
      const version = query.filters.version === undefined ? undefined : versionOf(query.filters.version);
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
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/:name/evaluations/:id',
      summary: 'One evaluation with its per-site results',
      tag: TAG,
      params: z.object({ name: ModelParams.shape.name, id: z.string() }),
      responses: { 200: { description: 'The evaluation', schema: EvaluationSchema } },
    },
    async (c, { params }) => c.json(await deps.evaluations.get(params.name, params.id)),
  );

  return app;
}

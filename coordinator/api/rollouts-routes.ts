// /v1/rollouts: staged, health-gated rollouts of a model version to the edge, and
// /v1/models/:name/versions/:version/retire: retirement of a version in favour of a successor.
import {
  EmptyBody,
  IdParams,
  ModelParams,
  RetireBody,
  RetirementList,
  RetirementRecord,
  RolloutBody,
  RolloutList,
  RolloutRecord,
  rolloutListFilters,
  VersionParams,
} from '../../shared/api-schemas/index.ts';
import { rolloutRequestOf } from '../rollouts/index.ts';
import type { ApiDeps } from './context.ts';
import { type ApiRouter, apiRouter, defineRoute } from './route-spec.ts';

const TAG = 'rollouts';

export function rolloutsRoutes(deps: ApiDeps): ApiRouter {
  const app = apiRouter();

  defineRoute(
    app,
    {
      method: 'post',
      path: '/',
      summary: 'Start a staged rollout of a version to the agents, in health-gated waves',
      tag: TAG,
      role: 'operator',
      body: RolloutBody,
      responses: { 201: { description: 'The rollout', schema: RolloutRecord } },
    },
    async (c, { body }) =>
      c.json(await deps.rollouts.create(rolloutRequestOf(body), c.get('caller').name), 201),
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/',
      summary: 'List rollouts (filters: model, state)',
      tag: TAG,
      query: { filters: rolloutListFilters, cursor: false },
      responses: { 200: { description: 'The rollouts', schema: RolloutList } },
    },
    async (c, { query }) => {
      const { model, state } = query.filters;
      const all = (await deps.rollouts.list()).filter(
        (r) => (model === undefined || r.model === model) && (state === undefined || r.state === state),
      );
      return c.json({ rollouts: all.slice(0, query.limit) });
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/:id',
      summary: 'One rollout: each wave and the state of each agent',
      tag: TAG,
      params: IdParams,
      responses: { 200: { description: 'The rollout', schema: RolloutRecord } },
    },
    async (c, { params }) => c.json(await deps.rollouts.get(params.id)),
  );

  const actions = {
    pause: 'Pause a rollout before its next wave',
    resume: 'Resume a paused rollout',
    rollback: 'Roll every agent of a rollout back to the version it ran before',
  } as const;
  for (const [action, summary] of Object.entries(actions) as [keyof typeof actions, string][]) {
    defineRoute(
      app,
      {
        method: 'post',
        path: `/:id/${action}`,
        summary,
        tag: TAG,
        role: 'operator',
        params: IdParams,
        body: EmptyBody,
        bodyOptional: true,
        responses: { 200: { description: 'The rollout', schema: RolloutRecord } },
      },
      async (c, { params }) => c.json(await deps.rollouts[action](params.id, c.get('caller').name)),
    );
  }
  return app;
}

/** Mounted under /v1/models beside the model routes. */
export function retirementRoutes(deps: ApiDeps): ApiRouter {
  const app = apiRouter();
  defineRoute(
    app,
    {
      method: 'post',
      path: '/:name/versions/:version/retire',
      summary: 'Retire a version in favour of a successor, which a rollout brings to its agents',
      tag: TAG,
      role: 'operator',
      params: VersionParams,
      body: RetireBody,
      responses: { 201: { description: 'The retirement', schema: RetirementRecord } },
    },
    async (c, { params, body }) => {
      const record = await deps.retirements.retire(
        params.name,
        params.version,
        { successor: body.successor, ...(body.graceSec === undefined ? {} : { graceSec: body.graceSec }) },
        c.get('caller').name,
      );
      return c.json(record, 201);
    },
  );
  defineRoute(
    app,
    {
      method: 'get',
      path: '/:name/retirements',
      summary: "A model's retired versions",
      tag: TAG,
      params: ModelParams,
      responses: { 200: { description: 'The retirements', schema: RetirementList } },
    },
    async (c, { params }) => {
      await deps.registry.getModel(params.name);
      return c.json({ retirements: (await deps.retirements.list()).filter((r) => r.model === params.name) });
    },
  );
  return app;
}

// /v1/models/:name/…: a version's stage, tags and description, and the model's aliases. Viewers
// read, operators change, admins force. A `:version` may be an alias (`.../versions/champion`).
import {
  AliasBody,
  AliasList,
  AliasParams,
  AliasRecord,
  LifecycleView,
  ModelParams,
  PolicyBody,
  PolicyResponse,
  StageBody,
  StageChange,
  VersionPatchBody,
  VersionRefParams,
} from '../../shared/api-schemas/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { parsePromotionPolicy } from '../lifecycle/index.ts';
import { parseRolloutPlan } from '../rollouts/index.ts';
import type { ApiDeps } from './context.ts';
import { type ApiRouter, apiRouter, defineRoute } from './route-spec.ts';

const TAG = 'lifecycle';

export function lifecycleRoutes(deps: ApiDeps): ApiRouter {
  const app = apiRouter();

  defineRoute(
    app,
    {
      method: 'patch',
      path: '/:name/versions/:version',
      summary: "Set a version's description and tags (a null tag removes it)",
      tag: TAG,
      role: 'operator',
      params: VersionRefParams,
      body: VersionPatchBody,
      responses: { 200: { description: "The version's lifecycle", schema: LifecycleView } },
    },
    async (c, { params, body }) => {
      const version = await deps.lifecycle.resolve(params.name, params.version);
      const patch = {
        ...(body.description === undefined ? {} : { description: body.description }),
        ...(body.tags === undefined ? {} : { tags: body.tags }),
      };
      return c.json(await deps.lifecycle.update(params.name, version, patch, c.get('caller').name));
    },
  );

  defineRoute(
    app,
    {
      method: 'post',
      path: '/:name/versions/:version/stage',
      summary: 'Move a version to a stage; production goes through the validation gate',
      tag: TAG,
      role: 'operator',
      params: VersionRefParams,
      body: StageBody,
      responses: {
        200: {
          description: "The version's lifecycle, and the rollout a promotion started",
          schema: StageChange,
        },
        409: { description: 'Refused by the gate (LOOM_ERR_GATE), the stage rules or a rollout in progress' },
      },
    },
    async (c, { params, body }) => {
      const version = await deps.lifecycle.resolve(params.name, params.version);
      const force = body.force ?? false;
      const caller = c.get('caller');
      if (force && caller.role !== 'admin') {
        throw new LoomError('LOOM_ERR_FORBIDDEN', `force needs the admin role; the token has ${caller.role}`);
      }
      if (force && !body.reason) {
        throw new LoomError(
          'LOOM_ERR_INVALID_ARGUMENT',
          'reason is required with force: the audit log records why',
          {
            details: { field: 'reason' },
          },
        );
      }
      const rollout = body.rollout === undefined ? undefined : parseRolloutPlan(body.rollout, 'rollout');
      if (rollout && body.stage !== 'production') {
        throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'rollout is for a promotion to production', {
          details: { field: 'rollout' },
        });
      }
      return c.json(
        await deps.lifecycle.setStage(params.name, version, body.stage, {
          actor: caller.name,
          force,
          ...(body.reason ? { reason: body.reason } : {}),
          ...(rollout ? { rollout } : {}),
        }),
      );
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/:name/policy',
      summary: "A model's promotion policy (null: none)",
      tag: TAG,
      params: ModelParams,
      responses: { 200: { description: 'The policy', schema: PolicyResponse } },
    },
    async (c, { params }) => c.json({ policy: (await deps.lifecycle.policy(params.name)) ?? null }),
  );

  defineRoute(
    app,
    {
      method: 'put',
      path: '/:name/policy',
      summary: "Set a model's promotion policy: metric, bound, largest regression",
      tag: TAG,
      role: 'operator',
      params: ModelParams,
      body: PolicyBody,
      responses: { 200: { description: 'The policy', schema: PolicyResponse } },
    },
    async (c, { params, body }) =>
      c.json({
        policy: await deps.lifecycle.setPolicy(params.name, parsePromotionPolicy(body), c.get('caller').name),
      }),
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/:name/aliases',
      summary: "A model's aliases",
      tag: TAG,
      params: ModelParams,
      responses: { 200: { description: 'The aliases', schema: AliasList } },
    },
    async (c, { params }) => {
      await deps.registry.getModel(params.name);
      return c.json({ aliases: await deps.lifecycle.aliases(params.name) });
    },
  );

  defineRoute(
    app,
    {
      method: 'put',
      path: '/:name/aliases/:alias',
      summary: 'Point an alias at a version',
      tag: TAG,
      role: 'operator',
      params: AliasParams,
      body: AliasBody,
      responses: { 200: { description: 'The alias', schema: AliasRecord } },
    },
    async (c, { params, body }) =>
      c.json(await deps.lifecycle.setAlias(params.name, params.alias, body.version, c.get('caller').name)),
  );

  defineRoute(
    app,
    {
      method: 'delete',
      path: '/:name/aliases/:alias',
      summary: 'Delete an alias',
      tag: TAG,
      role: 'operator',
      params: AliasParams,
      responses: { 204: { description: 'Deleted' } },
    },
    async (c, { params }) => {
      await deps.lifecycle.deleteAlias(params.name, params.alias, c.get('caller').name);
      return c.body(null, 204);
    },
  );

  return app;
}

// /v1/models: create models, list them, read versions and lineage, download artifacts.
import { z } from 'zod';
import {
  CreatedModel,
  ModelCreateBody,
  ModelDetail,
  ModelJson,
  ModelList,
  ModelParams,
  VersionList,
  VersionParams,
  VersionRefParams,
  VersionView,
  versionListFilters,
  versionOf,
} from '../../shared/api-schemas/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import {
  architectureParamCount,
  buildModel,
  initialWeights,
  type ModelArchitecture,
  modelSignature,
  modelTopology,
  modelWeightSpecs,
  toModelJson,
} from '../../shared/models/index.ts';
import { FieldReader } from '../../shared/protocol/index.ts';
import {
  countParams,
  splitWeightData,
  type WeightSpec,
  type WeightTensor,
} from '../../shared/tensors/index.ts';
import { DEFAULT_LIFECYCLE } from '../lifecycle/index.ts';
import type { ApiDeps } from './context.ts';
import { readJsonBody } from './errors.ts';
import { page } from './list-query.ts';
import { type ApiRouter, apiRouter, defineRoute } from './route-spec.ts';

/** A `:version` path parameter: a positive integer, else 400 naming it. */
export const versionParam = versionOf;

/**
 * Initial weights for a TensorFlow.js topology from a base64 weights.bin laid out as the
 * model.json's weightsManifest says; reordered to the model's own weight order.
 */
async function weightsFromUpload(
  arch: ModelArchitecture,
  manifest: unknown,
  base64: string,
): Promise<{ weights: WeightTensor[]; inputShape: number[]; classes: number }> {
  const data = Buffer.from(base64, 'base64');
  const entries = Array.isArray(manifest)
    ? manifest.flatMap((group: unknown, i) => {
        if (group === null || typeof group !== 'object') {
          throw new LoomError('LOOM_ERR_MODEL_SPEC', `weightsManifest.${i} must be an object`, {
            details: { field: `weightsManifest.${i}` },
          });
        }
        const weights = (group as { weights?: unknown }).weights;
        return Array.isArray(weights) ? weights : [];
      })
    : [];
  if (entries.length === 0) {
    throw new LoomError('LOOM_ERR_MODEL_SPEC', 'weights need the weightsManifest of the model.json', {
      details: { field: 'weightsManifest' },
    });
  }
  const specs: WeightSpec[] = entries.map((raw, i) => {
    const e = FieldReader.of(raw, `weightsManifest.weights.${i}`, 'LOOM_ERR_MODEL_SPEC');
    const name = e.string('name', { max: 256 });
    const shape = e.array('shape', { max: 8 }) as number[];
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      e.fail('shape', 'must be an array of non-negative integers');
    }
    if (e.has('dtype') && e.raw('dtype') !== 'float32') e.fail('dtype', 'must be float32');
    return { name, shape, dtype: 'float32' };
  });
  const described = countParams(specs) * 4;
  if (described > data.length) {
    throw new LoomError('LOOM_ERR_MODEL_SPEC', `weights are ${data.length} bytes, the manifest needs more`);
  }
  if (described !== data.length) {
    throw new LoomError(
      'LOOM_ERR_MODEL_SPEC',
      `weights are ${data.length} bytes, the manifest describes ${described}`,
    );
  }
  const byName = new Map(
    splitWeightData(specs, data).map((t) => [t.name, { shape: t.shape, values: t.data }]),
  );
  const model = await buildModel(arch);
  try {
    const weights = modelWeightSpecs(model).map((spec) => {
      const entry = byName.get(spec.name);
      // Same shape, not just the same size: a transposed kernel must not be reinterpreted.
      if (
        !entry ||
        entry.shape.length !== spec.shape.length ||
        entry.shape.some((d, i) => d !== spec.shape[i])
      ) {
        throw new LoomError(
          'LOOM_ERR_MODEL_SPEC',
          `weights have no ${spec.name} of shape [${spec.shape}]` +
            (entry ? ` (the manifest gives [${entry.shape}])` : ''),
        );
      }
      return { ...spec, data: entry.values };
    });
    return { weights, ...modelSignature(model) };
  } finally {
    model.dispose();
  }
}

/** Default of `modelsRoutes`' maxModelBytes: 1 GiB of weights. */
const DEFAULT_MAX_MODEL_BYTES = 1024 * 1024 * 1024;

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toLocaleString('en-US', { maximumFractionDigits: 1 })} MiB`;
}

/**
 * Refuses a model whose weights no task or update could carry, naming the limit and the setting
 * (LOOM_ERR_MODEL_SPEC, 400) instead of failing later, round after round.
 */
function assertModelFits(params: number, maxModelBytes: number): void {
  const bytes = params * 4;
  if (bytes <= maxModelBytes) return;
  throw new LoomError(
    'LOOM_ERR_MODEL_SPEC',
    `the model has ${params.toLocaleString('en-US')} parameters (${mib(bytes)} of float32 weights); ` +
      `the largest model a training task can carry is ${mib(maxModelBytes)} ` +
      '(the coordinator setting maxPayloadBytes, LOOM_MAX_PAYLOAD_BYTES)',
    { details: { field: 'architecture', params, limitBytes: maxModelBytes } },
  );
}

const TAG = 'models';

/** @param maxModelBytes default 1 GiB */
export function modelsRoutes(deps: ApiDeps, maxModelBytes = DEFAULT_MAX_MODEL_BYTES): ApiRouter {
  const app = apiRouter();

  defineRoute(
    app,
    {
      method: 'post',
      path: '/',
      summary: 'Create a model with its version 1 (initial or uploaded weights)',
      tag: TAG,
      role: 'operator',
      query: 'ignored',
      body: ModelCreateBody,
      responses: { 201: { description: 'The model with its version 1', schema: CreatedModel } },
    },
    async (c, { body }) => {
      const { name, description, holdoutFraction, architecture: arch } = body;
      const weightsB64 = body.weights;
      if (weightsB64 !== undefined && arch.kind !== 'tfjs') {
        throw new LoomError(
          'LOOM_ERR_INVALID_ARGUMENT',
          'weights is only accepted with a tfjs architecture',
          {
            details: { field: 'weights' },
          },
        );
      }
      // Counted before anything is built: a model of 10^12 parameters must not be allocated.
      const counted = architectureParamCount(arch);
      if (counted !== undefined) assertModelFits(counted, maxModelBytes);
      // The manifest is read from the topology as sent (parseArchitecture keeps modelTopology only).
      const sent = (await readJsonBody(c)).architecture as { topology?: { weightsManifest?: unknown } };
      const init =
        weightsB64 === undefined
          ? await initialWeights(arch)
          : await weightsFromUpload(arch, sent.topology?.weightsManifest, weightsB64);
      assertModelFits(countParams(init.weights), maxModelBytes);
      const caller = c.get('caller');
      const created = await deps.registry.createModel(
        {
          name,
          ...(description ? { description } : {}),
          architecture: arch,
          inputShape: init.inputShape,
          classes: init.classes,
          weights: init.weights,
          ...(holdoutFraction === undefined ? {} : { holdoutFraction }),
        },
        { audit: { actor: caller.name, action: 'model.create', target: name } },
      );
      return c.json({ ...created.model, version: created.version }, 201);
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/',
      summary: 'List models, sorted by name',
      tag: TAG,
      query: { filters: {} },
      responses: { 200: { description: 'One page of models', schema: ModelList } },
    },
    async (c, { query }) => {
      const models = (await deps.registry.listModels()).sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
      );
      const { items, next } = page(models, query, (m) => m.name);
      return c.json({ models: items, ...(next ? { next } : {}) });
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/:name',
      summary: 'One model and the version deployed to the agents',
      tag: TAG,
      params: ModelParams,
      responses: { 200: { description: 'The model', schema: ModelDetail } },
    },
    async (c, { params }) => {
      const model = await deps.registry.getModel(params.name);
      const deployment = await deps.deployments.get(params.name);
      return c.json({ ...model, deployedVersion: deployment?.version ?? null });
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/:name/versions',
      summary: "A model's versions with their lifecycle, ascending (filters: job, stage)",
      tag: TAG,
      params: ModelParams,
      query: { filters: versionListFilters },
      responses: { 200: { description: 'One page of versions', schema: VersionList } },
    },
    async (c, { params, query }) => {
      const { job, stage } = query.filters;
      const name = params.name;
      const lifecycles = await deps.lifecycle.views(name);
      const versions = (await deps.registry.listVersions(name))
        .map((v) => ({ ...v, ...(lifecycles.get(v.version) ?? { ...DEFAULT_LIFECYCLE, aliases: [] }) }))
        .filter((v) => (job === undefined || v.jobId === job) && (stage === undefined || v.stage === stage));
      const { items, next } = page(versions, query, (v) => v.version);
      return c.json({ versions: items, ...(next ? { next } : {}) });
    },
  );

  // `:version` may be an alias: GET .../versions/champion is the version it points at.
  defineRoute(
    app,
    {
      method: 'get',
      path: '/:name/versions/:version',
      summary: 'One version (or the version an alias points at) with its lineage and lifecycle',
      tag: TAG,
      params: VersionRefParams,
      responses: { 200: { description: 'The version', schema: VersionView } },
    },
    async (c, { params }) => {
      const version = await deps.lifecycle.resolve(params.name, params.version);
      const record = await deps.registry.getVersion(params.name, version);
      return c.json({ ...record, ...(await deps.lifecycle.view(params.name, version)) });
    },
  );

  // tf.loadLayersModel(".../versions/N/artifact") reads this model.json, then fetches its
  // weights from the manifest path, which resolves to ".../versions/N/artifact/weights.bin".
  defineRoute(
    app,
    {
      method: 'get',
      path: '/:name/versions/:version/artifact',
      summary: "A version's TensorFlow.js model.json",
      tag: TAG,
      params: VersionParams,
      query: 'ignored',
      responses: { 200: { description: 'The model.json', schema: ModelJson } },
    },
    async (c, { params }) => {
      const { name, version } = params;
      const model = await deps.registry.getModel(name);
      const weights = await deps.registry.getWeights(name, version);
      let topology: Record<string, unknown>;
      if (model.architecture.kind === 'tfjs') topology = model.architecture.topology;
      else {
        const built = await buildModel(model.architecture);
        topology = modelTopology(built);
        built.dispose();
      }
      return c.json(
        toModelJson(topology, weights, 'artifact/weights.bin', { loom: { model: name, version } }),
      );
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/:name/versions/:version/artifact/weights.bin',
      summary: "A version's weights.bin, checked against its sha256",
      tag: TAG,
      params: VersionParams,
      query: 'ignored',
      responses: {
        200: {
          description: 'The weights',
          schema: z.string().meta({ format: 'binary' }),
          contentType: 'application/octet-stream',
        },
      },
    },
    async (c, { params }) => {
      // The registry checks these bytes against the version's sha256 before it hands them out, so
      // what a user downloads is exactly what the version record names.
      const data = await deps.registry.getWeightsData(params.name, params.version);
      const body = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
      return c.body(body, 200, { 'content-type': 'application/octet-stream' });
    },
  );

  return app;
}

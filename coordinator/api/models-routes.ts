// /v1/models: create models, list them, read versions and lineage, download artifacts.
import { Hono } from 'hono';
import { LoomError } from '../../shared/errors/index.ts';
import {
  buildModel,
  initialWeights,
  type ModelArchitecture,
  modelSignature,
  modelTopology,
  modelWeightSpecs,
  parseArchitecture,
  toModelJson,
} from '../../shared/models/index.ts';
import { FieldReader } from '../../shared/protocol/index.ts';
import {
  blobDataOffset,
  countParams,
  splitWeightData,
  type WeightSpec,
  type WeightTensor,
} from '../../shared/tensors/index.ts';
import { requireRole } from './auth.ts';
import type { ApiDeps, ApiEnv } from './context.ts';
import { readJsonBody } from './errors.ts';

function versionParam(raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `version "${raw}" is not a positive integer`, {
      details: { field: 'version' },
    });
  }
  return n;
}

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

export function modelsRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/', requireRole('operator'), async (c) => {
    const r = FieldReader.of(await readJsonBody(c), '', 'LOOM_ERR_INVALID_ARGUMENT').onlyKeys([
      'name',
      'description',
      'architecture',
      'weights',
    ]);
    const name = r.string('name', { max: 128 });
    const description = r.optionalString('description', { max: 2048 });
    const arch = parseArchitecture(r.raw('architecture'));
    const rawArch = r.raw('architecture') as { topology?: { weightsManifest?: unknown } };
    const weightsB64 = r.optionalString('weights', { max: 512 * 1024 * 1024 });
    if (weightsB64 !== undefined && arch.kind !== 'tfjs') {
      r.fail('weights', 'is only accepted with a tfjs architecture');
    }
    const init =
      weightsB64 === undefined
        ? await initialWeights(arch)
        : await weightsFromUpload(arch, rawArch.topology?.weightsManifest, weightsB64);
    const created = await deps.registry.createModel({
      name,
      ...(description ? { description } : {}),
      architecture: arch,
      inputShape: init.inputShape,
      classes: init.classes,
      weights: init.weights,
    });
    const caller = c.get('caller');
    await deps.audit.append({ actor: caller.name, action: 'model.create', target: name });
    return c.json({ ...created.model, version: created.version }, 201);
  });

  app.get('/', async (c) => c.json({ models: await deps.registry.listModels() }));

  app.get('/:name', async (c) => {
    const name = c.req.param('name');
    const model = await deps.registry.getModel(name);
    const deployment = await deps.deployments.get(name);
    return c.json({ ...model, deployedVersion: deployment?.version ?? null });
  });

  app.get('/:name/versions', async (c) =>
    c.json({ versions: await deps.registry.listVersions(c.req.param('name')) }),
  );

  app.get('/:name/versions/:version', async (c) =>
    c.json(await deps.registry.getVersion(c.req.param('name'), versionParam(c.req.param('version')))),
  );

  // tf.loadLayersModel(".../versions/N/artifact") reads this model.json, then fetches its
  // weights from the manifest path, which resolves to ".../versions/N/artifact/weights.bin".
  app.get('/:name/versions/:version/artifact', async (c) => {
    const name = c.req.param('name');
    const version = versionParam(c.req.param('version'));
    const model = await deps.registry.getModel(name);
    const weights = await deps.registry.getWeights(name, version);
    let topology: Record<string, unknown>;
    if (model.architecture.kind === 'tfjs') topology = model.architecture.topology;
    else {
      const built = await buildModel(model.architecture);
      topology = modelTopology(built);
      built.dispose();
    }
    return c.json(toModelJson(topology, weights, 'artifact/weights.bin', { loom: { model: name, version } }));
  });

  app.get('/:name/versions/:version/artifact/weights.bin', async (c) => {
    // The stored blob already ends with the weights.bin bytes (see weightsToBlob), checked against
    // its SHA-256 by the registry, so its tail is served as it is: no decode, no copy.
    const blob = await deps.registry.getWeightsBlob(
      c.req.param('name'),
      versionParam(c.req.param('version')),
    );
    const offset = blobDataOffset(blob);
    const body = new Uint8Array(
      blob.buffer as ArrayBuffer,
      blob.byteOffset + offset,
      blob.byteLength - offset,
    );
    return c.body(body, 200, { 'content-type': 'application/octet-stream' });
  });

  return app;
}

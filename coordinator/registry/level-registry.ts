// LevelDB implementation of the model registry: every model or version lands in one atomic batch.
import { LoomError } from '../../shared/errors/index.ts';
import {
  blobToWeights,
  countParams,
  sha256Hex,
  specsOf,
  type WeightSpec,
  type WeightTensor,
  weightsToBlob,
} from '../../shared/tensors/index.ts';
import {
  binarySublevel,
  type CoordinatorDb,
  jsonSublevel,
  numericKey,
  SUBLEVEL,
  withStoreErrors,
} from '../store/index.ts';
import type { ModelRecord, ModelRegistry, NewModel, NewVersion, VersionRecord } from './model-registry.ts';
import {
  assertModelName,
  assertNewModel,
  assertNewVersionFields,
  assertVersionNumber,
  assertWeights,
  totalExamples,
} from './validation.ts';

/** Options of `createLevelRegistry`. */
export interface LevelRegistryOptions {
  /** Clock for `createdAt` stamps. Default: the system clock. */
  now?: () => Date;
}

/** Key of a version and of its blob: `<model>/<zero-padded version>`, so versions sort numerically. */
function versionKey(model: string, version: number): string {
  return `${model}/${numericKey(version)}`;
}

/**
 * Key range of one model's versions. Model names cannot contain '/', and the padded numbers are
 * all digits, which sort below ':', so the range holds exactly this model's versions.
 */
function versionRange(model: string): { gt: string; lt: string } {
  return { gt: `${model}/`, lt: `${model}/:` };
}

function modelLock(name: string): string {
  return `model:${name}`;
}

/**
 * A `ModelRegistry` on the coordinator's LevelDB database. Model records, weight specs, version
 * records and weight blobs live in their own sublevels; writes that belong together go in one
 * root batch, and read-modify-write of a model is serialised through `db.locks`.
 */
export function createLevelRegistry(db: CoordinatorDb, options: LevelRegistryOptions = {}): ModelRegistry {
  const now = options.now ?? (() => new Date());
  const models = jsonSublevel<ModelRecord>(db.root, SUBLEVEL.models);
  // Version 1's specs, kept apart so checking a new version does not read a whole blob.
  const specs = jsonSublevel<WeightSpec[]>(db.root, SUBLEVEL.modelSpecs);
  const versions = jsonSublevel<VersionRecord>(db.root, SUBLEVEL.versions);
  const blobs = binarySublevel(db.root, SUBLEVEL.weights);

  async function readModel(name: string): Promise<ModelRecord> {
    const model: ModelRecord | undefined = await models.get(name);
    if (model === undefined) {
      throw new LoomError('LOOM_ERR_NOT_FOUND', `no model named "${name}"`, { details: { model: name } });
    }
    return model;
  }

  async function readVersion(name: string, version: number): Promise<VersionRecord> {
    assertModelName(name);
    assertVersionNumber(version);
    const record: VersionRecord | undefined = await versions.get(versionKey(name, version));
    if (record === undefined) {
      await readModel(name);
      throw new LoomError('LOOM_ERR_NOT_FOUND', `model "${name}" has no version ${version}`, {
        details: { model: name, version },
      });
    }
    return record;
  }

  async function readVerifiedBlob(name: string, version: number): Promise<Buffer> {
    const record = await readVersion(name, version);
    const blob: Buffer | undefined = await blobs.get(versionKey(name, version));
    if (blob === undefined) {
      throw new LoomError('LOOM_ERR_STORE', `weights of ${name} v${version} are missing from the store`);
    }
    const actual = sha256Hex(blob);
    if (actual !== record.sha256) {
      throw new LoomError('LOOM_ERR_INTEGRITY', `weights of ${name} v${version} do not match their SHA-256`, {
        details: { model: name, version, expected: record.sha256, actual },
      });
    }
    return blob;
  }

  function versionRecord(
    v: Omit<VersionRecord, 'numExamples' | 'sha256' | 'paramCount' | 'createdAt'>,
    weights: readonly WeightTensor[],
    blob: Buffer,
    createdAt: string,
  ): VersionRecord {
    return {
      model: v.model,
      version: v.version,
      parentVersion: v.parentVersion,
      jobId: v.jobId,
      round: v.round,
      agents: [...v.agents],
      exampleCounts: { ...v.exampleCounts },
      numExamples: totalExamples(v.exampleCounts),
      metrics: { ...v.metrics },
      createdAt,
      sha256: sha256Hex(blob),
      paramCount: countParams(weights),
    };
  }

  return {
    async createModel(m: NewModel) {
      assertNewModel(m);
      return db.locks.run(modelLock(m.name), () =>
        withStoreErrors(`create model ${m.name}`, async () => {
          if (await models.has(m.name)) {
            throw new LoomError('LOOM_ERR_CONFLICT', `a model named "${m.name}" already exists`, {
              details: { model: m.name },
            });
          }
          const createdAt = now().toISOString();
          const blob = weightsToBlob(m.weights);
          const version = versionRecord(
            {
              model: m.name,
              version: 1,
              parentVersion: null,
              jobId: null,
              round: null,
              agents: [],
              exampleCounts: {},
              metrics: {},
            },
            m.weights,
            blob,
            createdAt,
          );
          const model: ModelRecord = {
            name: m.name,
            ...(m.description === undefined ? {} : { description: m.description }),
            architecture: m.architecture,
            inputShape: [...m.inputShape],
            classes: m.classes,
            paramCount: version.paramCount,
            createdAt,
            latestVersion: 1,
          };
          const key = versionKey(m.name, 1);
          await db.root.batch([
            { type: 'put', sublevel: versions, key, value: version },
            { type: 'put', sublevel: blobs, key, value: blob },
            { type: 'put', sublevel: specs, key: m.name, value: specsOf(m.weights) },
            { type: 'put', sublevel: models, key: m.name, value: model },
          ]);
          return { model, version };
        }),
      );
    },

    async getModel(name: string) {
      assertModelName(name);
      return withStoreErrors(`read model ${name}`, () => readModel(name));
    },

    async listModels() {
      return withStoreErrors('list models', () => models.values().all());
    },

    async addVersion(v: NewVersion) {
      assertNewVersionFields(v);
      return db.locks.run(modelLock(v.model), () =>
        withStoreErrors(`add a version to model ${v.model}`, async () => {
          const model = await readModel(v.model);
          const modelSpecs: WeightSpec[] | undefined = await specs.get(v.model);
          if (modelSpecs === undefined) {
            throw new LoomError('LOOM_ERR_STORE', `weight specs of model "${v.model}" are missing`);
          }
          assertWeights(v.weights, modelSpecs);
          if (v.parentVersion !== null && v.parentVersion > model.latestVersion) {
            throw new LoomError(
              'LOOM_ERR_INVALID_ARGUMENT',
              `parentVersion ${v.parentVersion} does not exist (latest is ${model.latestVersion})`,
              { details: { field: 'parentVersion' } },
            );
          }
          const number = model.latestVersion + 1;
          const blob = weightsToBlob(v.weights);
          const record = versionRecord({ ...v, version: number }, v.weights, blob, now().toISOString());
          const key = versionKey(v.model, number);
          await db.root.batch([
            { type: 'put', sublevel: versions, key, value: record },
            { type: 'put', sublevel: blobs, key, value: blob },
            { type: 'put', sublevel: models, key: v.model, value: { ...model, latestVersion: number } },
          ]);
          return record;
        }),
      );
    },

    async getVersion(name: string, version: number) {
      return withStoreErrors(`read ${name} v${version}`, () => readVersion(name, version));
    },

    async listVersions(name: string) {
      assertModelName(name);
      return withStoreErrors(`list versions of ${name}`, async () => {
        await readModel(name);
        return versions.values(versionRange(name)).all();
      });
    },

    async getWeights(name: string, version: number) {
      return withStoreErrors(`read weights of ${name} v${version}`, async () =>
        blobToWeights(await readVerifiedBlob(name, version)),
      );
    },

    async getWeightsBlob(name: string, version: number) {
      return withStoreErrors(`read weights of ${name} v${version}`, () => readVerifiedBlob(name, version));
    },
  };
}

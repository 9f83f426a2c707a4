// LevelDB implementation of the model registry: every model or version lands in one atomic batch.
import { type DataKey, openBlob, sealBlob } from '../../shared/crypto/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import {
  blobDataOffset,
  blobToWeights,
  concatWeightData,
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
import type {
  AddVersionOptions,
  ModelRecord,
  ModelRegistry,
  NewModel,
  NewVersion,
  RegistryWriteOptions,
  VersionRecord,
} from './model-registry.ts';
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
  /** Encrypts every weight blob at rest (AES-256-GCM). Required: weights are never stored in the clear. */
  dataKey: DataKey;
  /** Clock for `createdAt` stamps. Default: the system clock. */
  now?: () => Date;
}

/** Associated data of a version's sealed blob: it opens under its own key only. */
function blobContext(key: string): string {
  return `weights ${key}`;
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
export function createLevelRegistry(db: CoordinatorDb, options: LevelRegistryOptions): ModelRegistry {
  const now = options.now ?? (() => new Date());
  const { dataKey } = options;
  if (!dataKey || !Buffer.isBuffer(dataKey.key)) throw new TypeError('createLevelRegistry needs a dataKey');
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

  /** The version's plain blob (see weightsToBlob), decrypted and checked against its SHA-256. */
  async function readVerifiedBlob(name: string, version: number): Promise<Buffer> {
    const record = await readVersion(name, version);
    const key = versionKey(name, version);
    const sealed: Buffer | undefined = await blobs.get(key);
    if (sealed === undefined) {
      throw new LoomError('LOOM_ERR_STORE', `weights of ${name} v${version} are missing from the store`);
    }
    const blob = openBlob(dataKey, sealed, blobContext(key));
    const actual = sha256Hex(blob.subarray(blobDataOffset(blob)));
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
      sha256: sha256Hex(concatWeightData(weights)),
      paramCount: countParams(weights),
    };
  }

  function sealedBlob(key: string, weights: readonly WeightTensor[]): Buffer {
    return sealBlob(dataKey, weightsToBlob(weights), blobContext(key));
  }

  return {
    async createModel(m: NewModel, writeOptions: RegistryWriteOptions = {}) {
      assertNewModel(m);
      return db.locks.run(modelLock(m.name), () =>
        withStoreErrors(`create model ${m.name}`, async () => {
          if (await models.has(m.name)) {
            throw new LoomError('LOOM_ERR_CONFLICT', `a model named "${m.name}" already exists`, {
              details: { model: m.name },
            });
          }
          const createdAt = now().toISOString();
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
            ...(m.holdoutFraction === undefined ? {} : { holdoutFraction: m.holdoutFraction }),
          };
          const key = versionKey(m.name, 1);
          await db.commit(
            [
              { type: 'put', sublevel: versions, key, value: version },
              { type: 'put', sublevel: blobs, key, value: sealedBlob(key, m.weights) },
              { type: 'put', sublevel: specs, key: m.name, value: specsOf(m.weights) },
              { type: 'put', sublevel: models, key: m.name, value: model },
            ],
            writeOptions,
          );
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

    async addVersion(v: NewVersion, addOptions: AddVersionOptions = {}) {
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
          const record = versionRecord({ ...v, version: number }, v.weights, now().toISOString());
          const key = versionKey(v.model, number);
          await db.commit(
            [
              { type: 'put', sublevel: versions, key, value: record },
              { type: 'put', sublevel: blobs, key, value: sealedBlob(key, v.weights) },
              { type: 'put', sublevel: models, key: v.model, value: { ...model, latestVersion: number } },
              ...(addOptions.alongside?.(record) ?? []),
            ],
            addOptions.audit ? { audit: addOptions.audit } : {},
          );
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

    async getWeightsData(name: string, version: number) {
      return withStoreErrors(`read weights of ${name} v${version}`, async () => {
        const blob = await readVerifiedBlob(name, version);
        return blob.subarray(blobDataOffset(blob));
      });
    },
  };
}

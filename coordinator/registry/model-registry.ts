// The model registry contract: models, their numbered versions and each version's weights.
import type { ModelArchitecture } from '../../shared/models/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';
import type { AuditEvent, StoreOp } from '../store/index.ts';

/** Options of the registry's writes. */
export interface RegistryWriteOptions {
  /** Audit entry written in the same batch as the change. */
  audit?: AuditEvent;
}

/** Options of `addVersion`. */
export interface AddVersionOptions extends RegistryWriteOptions {
  /**
   * More writes to commit in the same batch as the version (the job's round record, say), made
   * once the version's number is known.
   */
  alongside?: (version: VersionRecord) => StoreOp[];
}

/** A registered model; `latestVersion` is the highest version number written so far. */
export interface ModelRecord {
  name: string;
  description?: string;
  architecture: ModelArchitecture;
  inputShape: number[];
  classes: number;
  paramCount: number;
  createdAt: string;
  latestVersion: number;
  /**
   * Share of each site's data held out for federated evaluation, fixed at creation so evaluations
   * stay comparable. Absent (models made before it existed): HOLDOUT_DEFAULTS.fraction, 0.1.
   */
  holdoutFraction?: number;
}

/** One immutable version of a model and where it came from (job, round, contributing agents). */
export interface VersionRecord {
  model: string;
  version: number;
  parentVersion: number | null;
  jobId: string | null;
  round: number | null;
  agents: string[];
  exampleCounts: Record<string, number>;
  /** Sum of `exampleCounts`. */
  numExamples: number;
  metrics: Record<string, number>;
  createdAt: string;
  /** Hex SHA-256 of the version's weights as `weights.bin` (what the artifact route serves). */
  sha256: string;
  paramCount: number;
}

/** Input of `createModel`; `weights` become version 1. */
export interface NewModel {
  name: string;
  description?: string;
  architecture: ModelArchitecture;
  inputShape: number[];
  classes: number;
  weights: WeightTensor[];
  /** 0 to 0.5; default HOLDOUT_DEFAULTS.fraction (0.1). */
  holdoutFraction?: number;
}

/** Input of `addVersion`. */
export interface NewVersion {
  model: string;
  parentVersion: number | null;
  jobId: string | null;
  round: number | null;
  agents: string[];
  exampleCounts: Record<string, number>;
  metrics: Record<string, number>;
  weights: WeightTensor[];
}

/**
 * Storage of models, versions and weights. Implementations must write each version's record,
 * weights and the model's `latestVersion` atomically, and number versions without gaps or repeats
 * even under concurrent `addVersion` calls for one model.
 */
export interface ModelRegistry {
  /** Registers a model with its initial weights as version 1. LOOM_ERR_CONFLICT if the name is taken. */
  createModel(
    m: NewModel,
    options?: RegistryWriteOptions,
  ): Promise<{ model: ModelRecord; version: VersionRecord }>;
  /** LOOM_ERR_NOT_FOUND if there is no such model. */
  getModel(name: string): Promise<ModelRecord>;
  /** All models, sorted by name. */
  listModels(): Promise<ModelRecord[]>;
  /**
   * Adds version `latestVersion + 1`. The weights must match version 1's names, shapes and dtypes
   * (LOOM_ERR_INVALID_ARGUMENT otherwise, and nothing is written).
   */
  addVersion(v: NewVersion, options?: AddVersionOptions): Promise<VersionRecord>;
  /** LOOM_ERR_NOT_FOUND if the model or version does not exist. */
  getVersion(name: string, version: number): Promise<VersionRecord>;
  /** All versions of a model, ascending. LOOM_ERR_NOT_FOUND if there is no such model. */
  listVersions(name: string): Promise<VersionRecord[]>;
  /** The version's weights; LOOM_ERR_INTEGRITY if the stored bytes no longer match the recorded SHA-256. */
  getWeights(name: string, version: number): Promise<WeightTensor[]>;
  /** The version's `weights.bin` bytes (all tensors back to back), checked like `getWeights`. */
  getWeightsData(name: string, version: number): Promise<Buffer>;
}

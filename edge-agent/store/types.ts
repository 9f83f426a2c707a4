// What the local model store keeps per model version, and the interface it offers.

import type { ModelArchitecture } from '../../shared/models/index.ts';
import type { StoreProblem } from '../../shared/store/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';

/** Metadata of one stored model version. */
export interface StoredVersion {
  name: string;
  version: number;
  architecture: ModelArchitecture;
  /** Hex SHA-256 of the stored weights blob (`weightsToBlob`), checked on every read. */
  sha256: string;
  /** ISO time the agent stored this version. */
  receivedAt: string;
}

/** A model version to store. */
export interface NewVersion {
  name: string;
  version: number;
  architecture: ModelArchitecture;
  weights: WeightTensor[];
}

/** The agent's model versions on disk; serving reads from here, so it works offline. */
export interface LocalModelStore {
  /**
   * Stores meta, weights and the active pointer in one atomic batch: the version put last
   * becomes the active one for its name. Putting an existing version replaces it.
   */
  put(v: NewVersion): Promise<StoredVersion>;
  /** Reads a version; LOOM_ERR_NOT_FOUND if absent, LOOM_ERR_INTEGRITY if its hash fails. */
  get(name: string, version: number): Promise<{ meta: StoredVersion; weights: WeightTensor[] }>;
  /** Every stored version, ordered by name then version. */
  list(): Promise<StoredVersion[]>;
  /** The active version of `name`, if any. */
  active(name: string): Promise<StoredVersion | undefined>;
  /** The active version of every model name, ordered by name. */
  activeAll(): Promise<StoredVersion[]>;
  /**
   * What is wrong with the store: data LevelDB dropped while opening, writes lost against the
   * durable head, records without weights, active versions that are gone, and (`full`) weights
   * that no longer decrypt or match their hash.
   */
  check(options?: { full?: boolean }): Promise<StoreProblem[]>;
  /**
   * Removes every damaged version and points each model at its newest intact one (or at nothing),
   * so only what is whole is served; the coordinator sends the rest again. Returns what it removed.
   */
  repair(): Promise<{ removed: string[] }>;
  /** Makes a stored version the active one of its name; LOOM_ERR_NOT_FOUND when it is not stored. */
  setActive(name: string, version: number): Promise<void>;
  /**
   * Keeps at most `keep` versions of `name`: the active one and the most recently received
   * others; the rest are deleted. Returns the versions removed.
   */
  prune(name: string, keep: number): Promise<number[]>;
  close(): Promise<void>;
}

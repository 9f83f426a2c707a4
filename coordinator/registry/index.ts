// Public door of coordinator/registry.

export type { LevelRegistryOptions } from './level-registry.ts';
export { createLevelRegistry } from './level-registry.ts';
export type {
  AddVersionOptions,
  ModelRecord,
  ModelRegistry,
  NewModel,
  NewVersion,
  RegistryWriteOptions,
  VersionRecord,
} from './model-registry.ts';
export {
  assertModelName,
  assertNewModel,
  assertNewVersionFields,
  assertVersionNumber,
  assertWeights,
  holdoutFractionOf,
  MODEL_NAME_PATTERN,
  totalExamples,
} from './validation.ts';

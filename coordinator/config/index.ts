// Public door of coordinator/config.

export type { CoordinatorConfig } from './coordinator-config.ts';
export {
  CONFIG_FILE,
  COORDINATOR_DEFAULTS,
  readConfigFile,
  resolveCoordinatorConfig,
} from './coordinator-config.ts';

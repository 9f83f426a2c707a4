// Public door of coordinator.

export type { CoordinatorConfig } from './config/index.ts';
export { COORDINATOR_DEFAULTS, resolveCoordinatorConfig } from './config/index.ts';
export type { RunningCoordinator } from './coordinator.ts';
export { startCoordinator } from './coordinator.ts';
export type { CoordinatorPart, InitResult } from './setup/index.ts';
export { createAdminToken, initCoordinator } from './setup/index.ts';

// Public door of coordinator.

export type { CoordinatorConfig } from './config/index.ts';
export { COORDINATOR_DEFAULTS, resolveCoordinatorConfig } from './config/index.ts';
export type { RunningCoordinator, StartOptions } from './coordinator.ts';
export { startCoordinator } from './coordinator.ts';
export type { StoreReport } from './integrity/index.ts';
export { formatStoreReport } from './integrity/index.ts';
export type { AuditCheck, CheckOptions, RestoreResult } from './maintenance.ts';
export {
  backupCoordinator,
  checkCoordinator,
  restoreCoordinator,
  verifyBackupFile,
  verifyCoordinatorAudit,
} from './maintenance.ts';
export type { CoordinatorPart, InitResult } from './setup/index.ts';
export { createAdminToken, initCoordinator, readCaPassphrase } from './setup/index.ts';
export { verifyAuditChain } from './store/index.ts';

// Public door of coordinator/setup.

export type { AdminTokenResult, CreateAdminTokenOptions } from './admin-token.ts';
export { ADMIN_TOKEN_DEFAULT_NAME, createAdminToken } from './admin-token.ts';
export type { CoordinatorPki, InitOptions, InitResult } from './coordinator-pki.ts';
export {
  coordinatorInitState,
  dbDir,
  initCoordinator,
  loadCoordinatorPki,
  pkiDir,
} from './coordinator-pki.ts';
export { coordinatorKeyProvider, defaultDataKeyFile, openStoreDataKey } from './data-key.ts';

// Public door of coordinator/setup.

export type { AdminTokenResult, CreateAdminTokenOptions } from './admin-token.ts';
export { ADMIN_TOKEN_DEFAULT_NAME, createAdminToken } from './admin-token.ts';
export { apiUrlFor, isWildcardAddress } from './api-url.ts';
export type { CoordinatorPki, InitOptions, InitResult } from './coordinator-pki.ts';
export {
  CA_PASSPHRASE_ENV,
  initCoordinator,
  loadCoordinatorPki,
  readCaPassphrase,
} from './coordinator-pki.ts';
export type { CoordinatorPart } from './data-dir.ts';
export {
  coordinatorInitState,
  dbDir,
  findCoordinatorParts,
  openDataDirDb,
  pkiDir,
} from './data-dir.ts';
export { coordinatorKeyProvider, defaultDataKeyFile, openStoreDataKey } from './data-key.ts';

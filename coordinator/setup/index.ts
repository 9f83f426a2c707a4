// Public door of coordinator/setup.

export type { CoordinatorPki, InitOptions, InitResult } from './coordinator-pki.ts';
export { dbDir, initCoordinator, loadCoordinatorPki, pkiDir } from './coordinator-pki.ts';

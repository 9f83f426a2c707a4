// Public door of shared/compute.

export type { BackendChoice, BackendName } from './backend.ts';
export { BACKEND_PREFERENCE, currentBackend, initCompute } from './backend.ts';

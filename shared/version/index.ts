// Public door of shared/version.

export { LOOM_VERSION } from './version.ts';

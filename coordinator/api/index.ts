// Public door of coordinator/api.
export { API_DEFAULTS, createApiApp } from './app.ts';
export type { ApiDeps, ApiEnv, Caller } from './context.ts';
export type { ApiServer } from './server.ts';
export { startApiServer } from './server.ts';

// Public door of coordinator/api.
export type { ApiOptions } from './app.ts';
export { API_DEFAULTS, createApiApp } from './app.ts';
export type { ApiBindings, ApiDeps, ApiEnv, Caller } from './context.ts';
export type { RateLimitDecision, RateLimitOptions } from './rate-limit.ts';
export { FixedWindowRateLimiter, RATE_LIMIT_DEFAULTS } from './rate-limit.ts';
export type { ApiServer } from './server.ts';
export { startApiServer } from './server.ts';

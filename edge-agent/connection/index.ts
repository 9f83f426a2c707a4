// Public door of edge-agent/connection.

export type { BackoffOptions } from './backoff.ts';
export { BACKOFF_DEFAULTS, backoffDelay } from './backoff.ts';
export type { ConnectionEvents, CoordinatorConnectionOptions } from './coordinator-connection.ts';
export { CoordinatorConnection, REPLACED_BACKOFF } from './coordinator-connection.ts';

// Public door of shared/errors.

export { causeWithCode } from './cause.ts';
export type { LoomErrorCode } from './codes.ts';
export { ERROR_CODES } from './codes.ts';
export type { LoomErrorOptions } from './loom-error.ts';
export { isLoomError, LoomError } from './loom-error.ts';

// Public door of coordinator/store.

export type { CoordinatorDb, RootLevel } from './coordinator-db.ts';
export { openCoordinatorDb } from './coordinator-db.ts';
export { KeyedMutex } from './keyed-mutex.ts';
export { NUMERIC_KEY_WIDTH, numericKey, parseNumericKey } from './numeric-key.ts';
export { withStoreErrors } from './store-errors.ts';
export type { BinarySublevel, JsonSublevel, SublevelName } from './sublevels.ts';
export { binarySublevel, jsonSublevel, SUBLEVEL } from './sublevels.ts';

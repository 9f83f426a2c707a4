// Public door of coordinator/integrity: the store's consistency check.

export type { StoreCheckDeps, StoreCheckOptions, StoreReport } from './store-check.ts';
export { acceptStoreProblems, checkStore, formatStoreReport } from './store-check.ts';

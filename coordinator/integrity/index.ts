// Public door of coordinator/integrity: the store's consistency check.

export type { RecordProblem } from './lifecycle-check.ts';
export { LIFECYCLE_PROBLEM_KINDS } from './lifecycle-check.ts';
export type { StoreCheckDeps, StoreCheckOptions, StoreReport } from './store-check.ts';
export { acceptStoreProblems, checkStore, formatStoreReport } from './store-check.ts';

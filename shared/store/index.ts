// Public door of shared/store: durability and damage detection for the embedded LevelDB stores.

export type { DurableHead, StoreProblem } from './durable-level.ts';
export {
  clearDamage,
  ensurePrivateDir,
  headProblems,
  levelRecoveryComplaints,
  readDamage,
  readHead,
  recordDamage,
  STORE_FILES,
  writeHead,
} from './durable-level.ts';

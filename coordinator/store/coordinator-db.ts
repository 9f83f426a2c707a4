// Opens the coordinator's embedded LevelDB database, the one root every store hangs its sublevels on.
import { Level } from 'level';
import { LoomError } from '../../shared/errors/index.ts';
import { KeyedMutex } from './keyed-mutex.ts';

/** The root LevelDB database: string keys, JSON values unless a sublevel says otherwise. */
export type RootLevel = Level<string, unknown>;

/** An open coordinator database. */
export interface CoordinatorDb {
  /** The root database; stores create their sublevels on it and commit cross-sublevel batches through it. */
  readonly root: RootLevel;
  /**
   * Per-key locks shared by every store built on this database, so two store instances on the
   * same database still serialise their read-modify-write sequences against each other.
   */
  readonly locks: KeyedMutex;
  /** Closes the database; pending writes finish first. */
  close(): Promise<void>;
}

/**
 * Opens (creating if needed) the LevelDB database in `dir` with JSON values by default.
 * Throws LOOM_ERR_STORE when the directory cannot be opened (for example, another process holds its lock).
 */
export async function openCoordinatorDb(dir: string): Promise<CoordinatorDb> {
  const root: RootLevel = new Level<string, unknown>(dir, { valueEncoding: 'json' });
  try {
    await root.open();
  } catch (err) {
    throw new LoomError('LOOM_ERR_STORE', `cannot open the coordinator database in ${dir}`, { cause: err });
  }
  return {
    root,
    locks: new KeyedMutex(),
    close: () => root.close(),
  };
}

// `loom coordinator admin-token`: a new admin API token written straight into a stopped
// coordinator's database, for when every admin token is lost or revoked.
import { createApiToken } from '../../certs/index.ts';
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import { createLevelTokenStore } from '../directory/index.ts';
import { type CoordinatorDb, openCoordinatorDb } from '../store/index.ts';
import { coordinatorInitState, dbDir } from './coordinator-pki.ts';

/** Name given to tokens made by `createAdminToken` when none is given. */
export const ADMIN_TOKEN_DEFAULT_NAME = 'recovery admin';

export interface CreateAdminTokenOptions {
  dataDir: string;
  /** Name of the token (the audit log's actor for calls made with it). Default 'recovery admin'. */
  name?: string;
}

export interface AdminTokenResult {
  /** `loom_<id>_<secret>`, shown once; only its hash is stored. */
  adminToken: string;
  id: string;
  name: string;
}

/** True when `err` (or one of its causes) is LevelDB saying another process holds the lock. */
function isLockHeld(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if ((e as { code?: unknown }).code === 'LEVEL_LOCKED') return true;
  }
  return false;
}

/**
 * Adds a new admin API token to the coordinator in `dataDir` and audits it. The coordinator must
 * be stopped: its database lock refuses a second opener, and this answers LOOM_ERR_STORE saying to
 * stop it first. LOOM_ERR_INVALID_CONFIG when `dataDir` holds no (finished) coordinator.
 * @param opts.name default 'recovery admin'
 */
export async function createAdminToken(opts: CreateAdminTokenOptions): Promise<AdminTokenResult> {
  const name = opts.name ?? ADMIN_TOKEN_DEFAULT_NAME;
  if (name.length === 0 || name.length > 64 || /\p{Cc}/u.test(name)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'the token name must be 1 to 64 printable characters');
  }
  if ((await coordinatorInitState(opts.dataDir)) !== 'complete') {
    throw new LoomError(
      'LOOM_ERR_INVALID_CONFIG',
      `${opts.dataDir} holds no coordinator; run "loom coordinator init --data-dir ${opts.dataDir}" first`,
    );
  }
  let db: CoordinatorDb;
  try {
    db = await openCoordinatorDb(dbDir(opts.dataDir));
  } catch (err) {
    if (isLoomError(err) && isLockHeld(err)) {
      throw new LoomError(
        'LOOM_ERR_STORE',
        `the coordinator database in ${opts.dataDir} is in use; stop the coordinator first`,
        { cause: err },
      );
    }
    throw err;
  }
  try {
    const token = createApiToken();
    await createLevelTokenStore(db).addApiToken(
      { id: token.id, hash: token.hash, role: 'admin', name, createdAt: new Date().toISOString() },
      {
        audit: {
          actor: 'local: loom coordinator admin-token',
          action: 'api-token.create',
          target: token.id,
          details: { name, role: 'admin' },
        },
      },
    );
    return { adminToken: token.token, id: token.id, name };
  } finally {
    await db.close();
  }
}

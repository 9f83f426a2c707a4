// `loom coordinator admin-token`: a new admin API token written straight into a stopped
// coordinator's database, for when every admin token is lost or revoked.
import { createApiToken } from '../../certs/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { createLevelTokenStore } from '../directory/index.ts';
import { coordinatorInitState, openDataDirDb } from './data-dir.ts';

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

/**
 * Adds a new admin API token to the coordinator in `dataDir` and audits it. The coordinator must
 * be stopped: its database lock refuses a second opener, and this answers LOOM_ERR_STORE_LOCKED
 * saying to stop it first. LOOM_ERR_INVALID_CONFIG when `dataDir` holds no (finished) coordinator.
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
  const db = await openDataDirDb(opts.dataDir);
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

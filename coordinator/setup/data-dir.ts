// What a coordinator data dir holds: which parts of a coordinator are there (so `init` never
// overwrites one by accident), and its database opened with a clear answer when it is in use.
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { causeWithCode, LoomError } from '../../shared/errors/index.ts';
import { CONFIG_FILE } from '../config/index.ts';
import { type CoordinatorDb, openCoordinatorDb } from '../store/index.ts';

export function pkiDir(dataDir: string): string {
  return join(dataDir, 'pki');
}

export function dbDir(dataDir: string): string {
  return join(dataDir, 'db');
}

/** A part of a coordinator found in a data dir, and what deleting it loses. */
export interface CoordinatorPart {
  /** Relative to the data dir, e.g. `pki/ca-key.pem` or `db/` (folders end with a slash). */
  path: string;
  /** What is lost when it is deleted. */
  loses: string;
}

/** What each known file stands for; other files in pki/ are listed as "part of the PKI". */
const PART_MEANING: Record<string, string> = {
  'pki/ca-key.pem': 'the CA key: every agent enrolled with this coordinator will have to enroll again',
  'pki/ca-cert.pem': 'the CA certificate that agents pinned',
  'pki/server-key.pem': 'the server key',
  'pki/server-cert.pem': 'the server certificate',
  'db/': 'the database: models and versions, jobs, enrolled agents, API tokens, the audit log',
  [CONFIG_FILE]: 'the settings, with the certificate host names',
  [`${CONFIG_FILE}.tmp`]: 'a settings file an earlier init did not finish',
  'data.key': 'the data key: every stored version of every model becomes unreadable',
};

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * Every part of a coordinator in `dataDir`: `coordinator.json`, each file in `pki/` (or `pki/`
 * itself when empty) and `db/`. Empty when `dataDir` is missing or holds none of them; files
 * that are no part of a coordinator are not listed.
 */
export async function findCoordinatorParts(dataDir: string): Promise<CoordinatorPart[]> {
  const found: string[] = [];
  for (const file of [CONFIG_FILE, `${CONFIG_FILE}.tmp`]) {
    if (await exists(join(dataDir, file))) found.push(file);
  }
  if (await exists(pkiDir(dataDir))) {
    let names: string[];
    try {
      // The files init writes first, in order of what their loss costs; anything else after.
      const known = ['ca-key.pem', 'ca-cert.pem', 'server-key.pem', 'server-cert.pem'];
      const rank = (n: string): number => (known.includes(n) ? known.indexOf(n) : known.length);
      names = (await readdir(pkiDir(dataDir))).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    } catch {
      // A pki that is a file, or unreadable, is still in the way.
      names = [];
    }
    found.push(...(names.length > 0 ? names.map((n) => `pki/${n}`) : ['pki/']));
  }
  if (await exists(join(dataDir, 'data.key'))) found.push('data.key');
  if (await exists(dbDir(dataDir))) found.push('db/');
  return found.map((path) => ({ path, loses: PART_MEANING[path] ?? 'part of the coordinator PKI' }));
}

/**
 * `complete` when `dataDir` holds coordinator.json and pki/ (init writes coordinator.json last),
 * `empty` when it holds no part of a coordinator, and `partial` otherwise (an init that stopped
 * half way, or a coordinator that lost a file).
 */
export async function coordinatorInitState(dataDir: string): Promise<'empty' | 'partial' | 'complete'> {
  const parts = (await findCoordinatorParts(dataDir)).map((p) => p.path);
  if (parts.length === 0) return 'empty';
  return parts.includes(CONFIG_FILE) && parts.some((p) => p.startsWith('pki/')) ? 'complete' : 'partial';
}

/**
 * Opens the database of the coordinator in `dataDir`. LOOM_ERR_STORE_LOCKED when another
 * process holds it (a coordinator running on that data dir), LOOM_ERR_STORE for other failures.
 */
export async function openDataDirDb(dataDir: string): Promise<CoordinatorDb> {
  try {
    return await openCoordinatorDb(dbDir(dataDir));
  } catch (err) {
    if (causeWithCode(err, 'LEVEL_LOCKED')) {
      throw new LoomError(
        'LOOM_ERR_STORE_LOCKED',
        `the database in ${dbDir(dataDir)} is in use by another process — is a coordinator already ` +
          'running on this data dir? Stop it first',
        { cause: err },
      );
    }
    throw err;
  }
}

// `loom coordinator init`: the CA (key 0600, never leaves the coordinator), the server
// certificate for the coordinator's names, the first admin token and, last, the settings file.
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  certificateFingerprint,
  createApiToken,
  createCA,
  issueServerCert,
  type KeyCertPair,
  writeKeyFile,
} from '../../certs/index.ts';
import { createDataKeyFile, DATA_KEY_ENV } from '../../shared/crypto/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { ensurePrivateDir } from '../../shared/store/index.ts';
import { CONFIG_FILE, COORDINATOR_DEFAULTS } from '../config/index.ts';
import { createLevelTokenStore } from '../directory/index.ts';
import { openCoordinatorDb, SUBLEVEL } from '../store/index.ts';
import { coordinatorKeyProvider, defaultDataKeyFile, openStoreDataKey } from './data-key.ts';

export interface CoordinatorPki {
  ca: KeyCertPair;
  server: KeyCertPair;
  caFingerprint: string;
}

const PKI = {
  caKey: 'ca-key.pem',
  caCert: 'ca-cert.pem',
  serverKey: 'server-key.pem',
  serverCert: 'server-cert.pem',
} as const;

export function pkiDir(dataDir: string): string {
  return join(dataDir, 'pki');
}

export function dbDir(dataDir: string): string {
  return join(dataDir, 'db');
}

export interface InitOptions {
  dataDir: string;
  /** Names and IPs the server certificate is valid for (default localhost, 127.0.0.1, ::1). */
  hosts?: string[];
}

export interface InitResult {
  /** Printed once; only its hash is stored. */
  adminToken: string;
  caFingerprint: string;
  hosts: string[];
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * How far `init` got in `dataDir`: `complete` once coordinator.json sits next to pki/ (init writes
 * it last), `interrupted` when pki/ exists without it, `empty` when there is no pki/ (and no db/).
 * A db/ without pki/ was not made by init, so it is refused rather than guessed at.
 */
export async function coordinatorInitState(dataDir: string): Promise<'empty' | 'interrupted' | 'complete'> {
  const [config, pki, db] = await Promise.all([
    exists(join(dataDir, CONFIG_FILE)),
    exists(pkiDir(dataDir)),
    exists(dbDir(dataDir)),
  ]);
  if (pki) return config ? 'complete' : 'interrupted';
  if (db) {
    throw new LoomError(
      'LOOM_ERR_CONFLICT',
      `${dataDir} holds a db/ folder but no pki/; it is not a Loom coordinator folder, choose another --data-dir`,
    );
  }
  return 'empty';
}

/**
 * Guards the redo of an interrupted init: its db/ can hold at most the one admin token init writes.
 * Anything more means a coordinator that ran and then lost coordinator.json, whose data must not be
 * wiped; a running coordinator holds the database lock, which also refuses (LOOM_ERR_STORE).
 */
async function assertOnlyInitData(dataDir: string): Promise<void> {
  if (!(await exists(dbDir(dataDir)))) return;
  const db = await openCoordinatorDb(dbDir(dataDir));
  let keys: string[];
  try {
    keys = await db.root.keys({ limit: 16 }).all();
  } finally {
    await db.close();
  }
  // What init itself writes: the first admin token, its audit entry and the store's bookkeeping.
  const initPrefixes = [SUBLEVEL.apiTokens, SUBLEVEL.audit, SUBLEVEL.meta].map((name) => `!${name}!`);
  const initOnly =
    keys.filter((k) => k.startsWith(`!${SUBLEVEL.apiTokens}!`)).length <= 1 &&
    keys.every((k) => initPrefixes.some((prefix) => k.startsWith(prefix)));
  if (!initOnly) {
    throw new LoomError(
      'LOOM_ERR_CONFLICT',
      `${dataDir} holds a used coordinator database but no ${CONFIG_FILE}; restore ${CONFIG_FILE} ` +
        '(it may hold just {"hosts": [...]}) instead of running init again',
    );
  }
}

/**
 * Creates a coordinator in `dataDir`: PKI, then the database with the first admin token, then
 * coordinator.json, which marks the init as done. LOOM_ERR_CONFLICT if a finished coordinator is
 * there already. A folder whose init was interrupted (pki/ but no coordinator.json) has its pki/ and
 * db/ removed and is initialised again: nothing in them was ever handed out, and the admin token
 * printed at the end is the only way in.
 * @param opts.hosts default localhost, 127.0.0.1, ::1
 */
export async function initCoordinator(opts: InitOptions): Promise<InitResult> {
  const dir = pkiDir(opts.dataDir);
  const state = await coordinatorInitState(opts.dataDir);
  if (state === 'complete') {
    throw new LoomError(
      'LOOM_ERR_CONFLICT',
      `${opts.dataDir} already holds a coordinator; choose another --data-dir`,
    );
  }
  if (state === 'interrupted') {
    await assertOnlyInitData(opts.dataDir);
    await rm(dir, { recursive: true, force: true });
    await rm(dbDir(opts.dataDir), { recursive: true, force: true });
    await rm(defaultDataKeyFile(opts.dataDir), { force: true });
  }
  const hosts = opts.hosts && opts.hosts.length > 0 ? opts.hosts : [...COORDINATOR_DEFAULTS.hosts];
  // Private whatever the umask, and also when the folder existed before with a wider mode.
  await ensurePrivateDir(opts.dataDir);
  await ensurePrivateDir(dir);
  await ensurePrivateDir(dbDir(opts.dataDir));
  const ca = createCA({ commonName: 'Loom CA' });
  const server = issueServerCert(ca, { hosts });
  await writeKeyFile(join(dir, PKI.caKey), ca.keyPem);
  await writeFile(join(dir, PKI.caCert), ca.certPem);
  await writeKeyFile(join(dir, PKI.serverKey), server.keyPem);
  await writeFile(join(dir, PKI.serverCert), server.certPem);
  const token = createApiToken();
  // The data key that encrypts weights at rest: $LOOM_DATA_KEY when set, else a new key file.
  if (!process.env[DATA_KEY_ENV]) await createDataKeyFile(defaultDataKeyFile(opts.dataDir));
  const db = await openCoordinatorDb(dbDir(opts.dataDir));
  try {
    await openStoreDataKey(db, coordinatorKeyProvider({ dataDir: opts.dataDir }));
    await createLevelTokenStore(db).addApiToken(
      {
        id: token.id,
        hash: token.hash,
        role: 'admin',
        name: 'initial admin',
        createdAt: new Date().toISOString(),
      },
      {
        audit: {
          actor: 'local: loom coordinator init',
          action: 'api-token.create',
          target: token.id,
          details: { name: 'initial admin', role: 'admin' },
        },
      },
    );
  } finally {
    await db.close();
  }
  // Written last and renamed into place, so coordinator.json exists only once everything else does.
  const configPath = join(opts.dataDir, CONFIG_FILE);
  await writeFile(`${configPath}.tmp`, `${JSON.stringify({ hosts }, null, 2)}\n`);
  await rename(`${configPath}.tmp`, configPath);
  return { adminToken: token.token, caFingerprint: certificateFingerprint(ca.certPem), hosts };
}

/** Reads the PKI written by init; LOOM_ERR_INVALID_CONFIG when the folder was never initialised. */
export async function loadCoordinatorPki(dataDir: string): Promise<CoordinatorPki> {
  const dir = pkiDir(dataDir);
  try {
    const [caKey, caCert, serverKey, serverCert] = await Promise.all(
      [PKI.caKey, PKI.caCert, PKI.serverKey, PKI.serverCert].map((f) => readFile(join(dir, f), 'utf8')),
    );
    return {
      ca: { keyPem: caKey, certPem: caCert },
      server: { keyPem: serverKey, certPem: serverCert },
      caFingerprint: certificateFingerprint(caCert),
    };
  } catch (err) {
    throw new LoomError(
      'LOOM_ERR_INVALID_CONFIG',
      `${dataDir} holds no coordinator; run "loom coordinator init --data-dir ${dataDir}" first`,
      { cause: err },
    );
  }
}

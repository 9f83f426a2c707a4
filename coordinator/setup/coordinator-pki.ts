// `loom coordinator init`: the CA (key 0600, never leaves the coordinator), the server
// certificate for the coordinator's names, the settings file and the first admin token.
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  certificateFingerprint,
  createApiToken,
  createCA,
  issueServerCert,
  type KeyCertPair,
  writeKeyFile,
} from '../../certs/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { CONFIG_FILE, COORDINATOR_DEFAULTS } from '../config/index.ts';
import { createLevelTokenStore } from '../directory/index.ts';
import { openCoordinatorDb } from '../store/index.ts';

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

/** Creates a coordinator in `dataDir`. LOOM_ERR_CONFLICT if one already exists there. */
export async function initCoordinator(opts: InitOptions): Promise<InitResult> {
  const dir = pkiDir(opts.dataDir);
  const exists = await access(join(dir, PKI.caKey)).then(
    () => true,
    () => false,
  );
  if (exists) {
    throw new LoomError(
      'LOOM_ERR_CONFLICT',
      `${opts.dataDir} already holds a coordinator; choose another --data-dir`,
    );
  }
  const hosts = opts.hosts && opts.hosts.length > 0 ? opts.hosts : [...COORDINATOR_DEFAULTS.hosts];
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = createCA({ commonName: 'Loom CA' });
  const server = issueServerCert(ca, { hosts });
  await writeKeyFile(join(dir, PKI.caKey), ca.keyPem);
  await writeFile(join(dir, PKI.caCert), ca.certPem);
  await writeKeyFile(join(dir, PKI.serverKey), server.keyPem);
  await writeFile(join(dir, PKI.serverCert), server.certPem);
  await writeFile(join(opts.dataDir, CONFIG_FILE), `${JSON.stringify({ hosts }, null, 2)}\n`);

  const db = await openCoordinatorDb(dbDir(opts.dataDir));
  try {
    const token = createApiToken();
    await createLevelTokenStore(db).addApiToken({
      id: token.id,
      hash: token.hash,
      role: 'admin',
      name: 'initial admin',
      createdAt: new Date().toISOString(),
    });
    return { adminToken: token.token, caFingerprint: certificateFingerprint(ca.certPem), hosts };
  } finally {
    await db.close();
  }
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

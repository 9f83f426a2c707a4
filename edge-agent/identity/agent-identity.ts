// The agent's identity on disk: its private key (0600, never leaves the host), its client
// certificate, the pinned Loom CA, and where the coordinator is.
import { access, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { certificateInfo } from '../../certs/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { writeFileAtomic } from '../../shared/fs/index.ts';
import { ensurePrivateDir } from '../../shared/store/index.ts';

export interface AgentIdentity {
  agentId: string;
  name: string;
  /** Operator API base URL used at enrollment (https://host:port). */
  coordinatorUrl: string;
  /** Agent gateway URL (wss://host:port/v1/agent). */
  agentUrl: string;
  caFingerprint: string;
  enrolledAt: string;
  keyPem: string;
  certPem: string;
  caPem: string;
}

const FILES = { key: 'agent-key.pem', cert: 'agent-cert.pem', ca: 'ca.pem', meta: 'agent.json' } as const;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export function identityDir(dataDir: string): string {
  return join(dataDir, 'identity');
}

/**
 * Writes the identity; the key file gets mode 0600 and the folder 0700. The files are written to
 * a fresh folder that then replaces the old one, so a crash never leaves a key beside the wrong
 * certificate (a renewal changes both).
 */
export async function saveIdentity(dataDir: string, id: AgentIdentity): Promise<void> {
  const final = identityDir(dataDir);
  const dir = `${final}.new-${process.pid}-${Date.now()}`;
  const previous = `${final}.prev`;
  await ensurePrivateDir(dataDir);
  await ensurePrivateDir(dir);
  // Each file fsync'd, so after a power cut the identity is the old one or the whole new one.
  await writeFileAtomic(join(dir, FILES.key), id.keyPem, { mode: 0o600 });
  await writeFileAtomic(join(dir, FILES.cert), id.certPem, { mode: 0o644 });
  await writeFileAtomic(join(dir, FILES.ca), id.caPem, { mode: 0o644 });
  const { keyPem: _k, certPem: _c, caPem: _ca, ...meta } = id;
  await writeFileAtomic(join(dir, FILES.meta), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o644 });
  await rm(previous, { recursive: true, force: true });
  const hadOne = await rename(final, previous).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
  await rename(dir, final);
  await syncFolder(dataDir);
  if (hadOne) await rm(previous, { recursive: true, force: true });
}

/** Makes the renames in `dir` durable. */
async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads the identity written by `loom agent enroll`; LOOM_ERR_INVALID_CONFIG when missing or damaged. */
export async function loadIdentity(dataDir: string): Promise<AgentIdentity> {
  let dir = identityDir(dataDir);
  // A crash between the two renames of saveIdentity leaves only the previous identity.
  if (!(await exists(dir)) && (await exists(`${dir}.prev`))) dir = `${dir}.prev`;
  try {
    const meta = JSON.parse(await readFile(join(dir, FILES.meta), 'utf8')) as Omit<
      AgentIdentity,
      'keyPem' | 'certPem' | 'caPem'
    >;
    const [keyPem, certPem, caPem] = await Promise.all([
      readFile(join(dir, FILES.key), 'utf8'),
      readFile(join(dir, FILES.cert), 'utf8'),
      readFile(join(dir, FILES.ca), 'utf8'),
    ]);
    for (const k of ['agentId', 'agentUrl', 'coordinatorUrl'] as const) {
      if (typeof meta[k] !== 'string') throw new Error(`agent.json has no ${k}`);
    }
    certificateInfo(certPem);
    return { ...meta, keyPem, certPem, caPem };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LoomError(
        'LOOM_ERR_INVALID_CONFIG',
        `${dataDir} holds no agent identity; run "loom agent enroll" with this --data-dir first`,
        { cause: err },
      );
    }
    throw new LoomError(
      'LOOM_ERR_INVALID_CONFIG',
      `agent identity in ${dir} is damaged: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

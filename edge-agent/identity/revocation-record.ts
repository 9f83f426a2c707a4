// The agent's own record that its coordinator revoked it, kept in the data dir so that a
// restarted agent stays revoked (and does not dial a coordinator that will refuse it) until
// the data dir is enrolled again under a new identity.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/fs/index.ts';

/** That, when and why the coordinator revoked agent `agentId`. */
export interface RevocationRecord {
  agentId: string;
  /** When this agent learnt of it (ISO 8601). */
  revokedAt: string;
  /** What the coordinator said. */
  reason: string;
}

const FILE = 'revocation.json';

export function revocationRecordPath(dataDir: string): string {
  return join(dataDir, FILE);
}

/**
 * The record that `agentId` is revoked, or undefined when it is not. A record left by an
 * earlier identity (the data dir was enrolled again since) is deleted and does not count. A
 * record that cannot be read counts as a revocation of this identity: failing closed is the
 * safe side, and deleting the file undoes it.
 */
export async function loadRevocationRecord(
  dataDir: string,
  agentId: string,
): Promise<RevocationRecord | undefined> {
  const path = revocationRecordPath(dataDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: Partial<RevocationRecord> | undefined;
  try {
    parsed = JSON.parse(text) as Partial<RevocationRecord>;
  } catch {
    parsed = undefined;
  }
  if (!parsed || typeof parsed.agentId !== 'string' || typeof parsed.revokedAt !== 'string') {
    return { agentId, revokedAt: new Date().toISOString(), reason: `${path} is damaged; delete it to undo` };
  }
  if (parsed.agentId !== agentId) {
    await rm(path, { force: true });
    return undefined;
  }
  return {
    agentId,
    revokedAt: parsed.revokedAt,
    reason: typeof parsed.reason === 'string' ? parsed.reason : 'revoked',
  };
}

/** Writes `record` (atomically, mode 0600). */
export async function saveRevocationRecord(dataDir: string, record: RevocationRecord): Promise<void> {
  await writeFileAtomic(revocationRecordPath(dataDir), `${JSON.stringify(record, null, 2)}\n`);
}

// What makes an embedded LevelDB store trustworthy after a power cut or a damaged disk: a durable
// head file written after every commit (the commit sequence number a later open must find again),
// LevelDB's own recovery complaints read back from its LOG, and a damage record that keeps a
// finding across restarts, because LevelDB rewrites a damaged log at the open that finds it.
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LoomError } from '../errors/index.ts';
import { writeFileAtomic } from '../fs/index.ts';

/** What the head file holds: the newest durable commit and any chain heads kept with it. */
export interface DurableHead {
  /** Sequence number of the last commit, also stored inside the database in the same batch. */
  commitSeq: number;
  /** Named chain heads (the audit log's last seq and hash, say). */
  chains?: Record<string, { seq: number; hash: string }>;
  writtenAt: string;
}

/** A problem found in a store; `kind` is stable, `message` is for people. */
export interface StoreProblem {
  kind: string;
  message: string;
  /** The job the problem concerns, when it concerns one. */
  job?: string;
  /** The record the problem concerns, when it is one record: its sublevel and key. */
  record?: { sublevel: string; key: string };
}

/** Files kept beside the LevelDB files of a store, inside its folder (LevelDB ignores names it did not make). */
export const STORE_FILES = { head: 'LOOM-HEAD.json', damage: 'LOOM-DAMAGE.json', levelLog: 'LOG' } as const;

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LoomError('LOOM_ERR_STORE', `cannot read ${path}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new LoomError('LOOM_ERR_STORE', `${path} is damaged (not JSON)`, { cause: err });
  }
}

/** The head file of the store in `dir`, or undefined when none was written yet. */
export async function readHead(dir: string): Promise<DurableHead | undefined> {
  const raw = (await readJson(join(dir, STORE_FILES.head))) as DurableHead | undefined;
  if (raw === undefined) return undefined;
  if (!raw || typeof raw !== 'object' || !Number.isSafeInteger(raw.commitSeq) || raw.commitSeq < 0) {
    throw new LoomError('LOOM_ERR_STORE', `${join(dir, STORE_FILES.head)} is damaged`);
  }
  return raw;
}

/** Writes the head file of the store in `dir`, durably (see writeFileAtomic). */
export function writeHead(dir: string, head: DurableHead): Promise<void> {
  return writeFileAtomic(join(dir, STORE_FILES.head), `${JSON.stringify(head)}\n`);
}

/**
 * The lines of LevelDB's LOG for the open that just happened that say it dropped data it could
 * not read ("dropping N bytes; Corruption: ..."). LevelDB goes on without them unless told to be
 * paranoid, which this binding cannot be: this is how Loom hears of it.
 */
export async function levelRecoveryComplaints(dir: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(join(dir, STORE_FILES.levelLog), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => /dropping|corruption/i.test(line))
    .map((line) => line.replace(/^\S+ \S+ /, '').trim());
}

/** Damage found at an earlier open and not yet accepted, so a restart cannot forget it. */
export async function readDamage(dir: string): Promise<StoreProblem[]> {
  const raw = await readJson(join(dir, STORE_FILES.damage));
  if (raw === undefined) return [];
  if (!Array.isArray(raw))
    throw new LoomError('LOOM_ERR_STORE', `${join(dir, STORE_FILES.damage)} is damaged`);
  return raw as StoreProblem[];
}

/** Records damage findings durably (merged with earlier ones). */
export async function recordDamage(dir: string, problems: readonly StoreProblem[]): Promise<void> {
  if (problems.length === 0) return;
  const known = await readDamage(dir);
  const seen = new Set(known.map((p) => `${p.kind}|${p.message}`));
  const merged = [...known, ...problems.filter((p) => !seen.has(`${p.kind}|${p.message}`))];
  await writeFileAtomic(join(dir, STORE_FILES.damage), `${JSON.stringify(merged, null, 2)}\n`);
}

/** Forgets recorded damage: an operator accepted the store as it is. */
export async function clearDamage(dir: string): Promise<void> {
  await rm(join(dir, STORE_FILES.damage), { force: true });
}

/**
 * What a store's durable head says against what the database holds: a database behind its head
 * lost commits (a log cut short, say); one ahead simply stopped between its commit and the head
 * write, which is harmless.
 */
export function headProblems(head: DurableHead | undefined, storedSeq: number): StoreProblem[] {
  if (head === undefined || storedSeq >= head.commitSeq) return [];
  return [
    {
      kind: 'lost-commits',
      message: `the database holds commits up to #${storedSeq}, but commit #${head.commitSeq} was made durable (${head.writtenAt}): ${head.commitSeq - storedSeq} committed write(s) are missing`,
    },
  ];
}

/**
 * Makes `path` (and missing parents) a folder only its owner can enter: mode 0700 whatever the
 * umask, and also when it existed before with a wider mode.
 */
export async function ensurePrivateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chmod(path, 0o700);
}

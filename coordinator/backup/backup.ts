// Online backups and restores of a coordinator: every database entry read from one LevelDB
// snapshot (so the backup is consistent while the coordinator keeps writing), plus its PKI and
// settings; restored into an empty data dir and checked before anyone starts it.
import { createReadStream } from 'node:fs';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import type { Writable } from 'node:stream';
import { Level } from 'level';
import { LoomError } from '../../shared/errors/index.ts';
import { ensurePrivateDir, writeHead } from '../../shared/store/index.ts';
import { CONFIG_FILE } from '../config/index.ts';
import { type CoordinatorDb, jsonSublevel, SUBLEVEL } from '../store/index.ts';
import { type BackupHeader, BackupWriter, readBackup } from './backup-format.ts';

/** The coordinator's own files a backup carries, relative to the data dir. The data key is not one. */
export const BACKUP_FILES = [
  'pki/ca-key.pem',
  'pki/ca-cert.pem',
  'pki/server-key.pem',
  'pki/server-cert.pem',
  CONFIG_FILE,
] as const;

/** What a backup or restore did. */
export interface BackupSummary {
  records: number;
  entries: number;
  files: number;
  /** SHA-256 of the backup's contents (the checksum it ends with). */
  sha256: string;
  commitSeq: number;
  dataKeyId: string | null;
}

/**
 * Writes a backup of the coordinator in `dataDir`, whose database `db` is open (by this process,
 * possibly while it serves requests), to `out`. The entries come from one iterator, that is one
 * LevelDB snapshot: writes made meanwhile are either wholly in the backup or not at all.
 */
export async function writeBackup(db: CoordinatorDb, dataDir: string, out: Writable): Promise<BackupSummary> {
  const meta = jsonSublevel<string>(db.root, SUBLEVEL.meta);
  const header: BackupHeader = {
    format: 'loom-coordinator-backup',
    version: 1,
    createdAt: new Date().toISOString(),
    commitSeq: db.commitSeq(),
    dataKeyId: (await meta.get('dataKeyId')) ?? null,
  };
  const writer = new BackupWriter(out, header);
  let files = 0;
  for (const path of BACKUP_FILES) {
    const full = join(dataDir, path);
    const content = await readFile(full).catch(() => undefined);
    if (content === undefined) continue;
    await writer.add({ kind: 'file', path, content, mode: (await stat(full)).mode & 0o777 });
    files++;
  }
  let entries = 0;
  // A commit that lands between reading commitSeq above and the iterator's snapshot is in the
  // backup with a sequence number past the header's: the restored database is then ahead of its
  // head, which the store check accepts, never behind it.
  for await (const [key, value] of db.root.iterator({ keyEncoding: 'buffer', valueEncoding: 'buffer' })) {
    await writer.add({ kind: 'entry', key: key as unknown as Buffer, value: value as Buffer });
    entries++;
  }
  const sha256 = await writer.finish();
  return {
    records: files + entries,
    entries,
    files,
    sha256,
    commitSeq: header.commitSeq,
    dataKeyId: header.dataKeyId,
  };
}

/** A backup file path inside the data dir, refusing anything that would escape it. */
function safePath(dataDir: string, path: string): string {
  const clean = normalize(path);
  if (
    clean.startsWith('..') ||
    clean.startsWith(sep) ||
    !(BACKUP_FILES as readonly string[]).includes(clean)
  ) {
    throw new LoomError('LOOM_ERR_INTEGRITY', `the backup names a file Loom does not restore: ${path}`);
  }
  return join(dataDir, clean);
}

/**
 * Restores the backup at `file` into `dataDir`, which must hold no coordinator (the caller checks).
 * The whole file is verified first (its checksum), then written: files with their modes, database
 * entries in batches, the durable head last. The data key is not in a backup: the caller makes
 * sure the key the header names is available before the coordinator starts.
 */
export async function restoreBackup(file: string, dataDir: string, dbPath: string): Promise<BackupSummary> {
  // Pass 1: nothing is written from a file whose checksum does not match.
  const verified = await readBackup(createReadStream(file), () => undefined);
  await ensurePrivateDir(dataDir);
  await ensurePrivateDir(dbPath);
  const root = new Level<Buffer, Buffer>(dbPath, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await root.open();
  let files = 0;
  let entries = 0;
  try {
    let batch: { type: 'put'; key: Buffer; value: Buffer }[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      await root.batch(batch, { sync: false });
      batch = [];
      batchBytes = 0;
    };
    await readBackup(createReadStream(file), async (record) => {
      if (record.kind === 'file') {
        const target = safePath(dataDir, record.path);
        await ensurePrivateDir(dirname(target));
        // Owner-only whatever the backup says: these are the CA's and the server's keys.
        await writeFile(target, record.content, { mode: 0o600 });
        await chmod(target, 0o600);
        files++;
        return;
      }
      batch.push({ type: 'put', key: record.key, value: record.value });
      batchBytes += record.key.length + record.value.length;
      entries++;
      if (batch.length >= 1000 || batchBytes >= 16 * 1024 * 1024) await flush();
    });
    await flush();
    // One synced write makes everything before it durable too.
    await root.put(Buffer.from('!meta!restoredFrom'), Buffer.from(JSON.stringify(verified.sha256)), {
      sync: true,
    });
  } finally {
    await root.close();
  }
  await writeHead(dbPath, { commitSeq: verified.header.commitSeq, writtenAt: new Date().toISOString() });
  return {
    records: verified.records,
    entries,
    files,
    sha256: verified.sha256,
    commitSeq: verified.header.commitSeq,
    dataKeyId: verified.header.dataKeyId,
  };
}

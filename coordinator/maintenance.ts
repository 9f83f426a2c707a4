// Offline care of a coordinator's data dir: `loom coordinator check`, `backup` and `restore`.
// Check and an offline backup open the database themselves (the coordinator must be stopped: its
// lock says so); a backup of a running coordinator goes through its local admin socket.
import { createReadStream, createWriteStream } from 'node:fs';
import { access, chmod, rename, rm } from 'node:fs/promises';
import { DATA_KEY_ENV } from '../shared/crypto/index.ts';
import { isLoomError, LoomError } from '../shared/errors/index.ts';
import { clearDamage } from '../shared/store/index.ts';
import { type AuditReport, auditReport, createLevelAuditLog } from './audit/index.ts';
import { type BackupSummary, readBackup, restoreBackup, writeBackup } from './backup/index.ts';
import { type CoordinatorConfig, resolveCoordinatorConfig } from './config/index.ts';
import { createLevelAgentDirectory, createLevelTokenStore } from './directory/index.ts';
import { acceptStoreProblems, checkStore, type StoreReport } from './integrity/index.ts';
import { createLevelJobStore } from './jobs/index.ts';
import { auditReportFromRunningCoordinator, backupFromRunningCoordinator } from './local-admin/index.ts';
import { createLevelRegistry } from './registry/index.ts';
import {
  coordinatorInitState,
  coordinatorKeyProvider,
  dbDir,
  defaultDataKeyFile,
  findCoordinatorParts,
  openDataDirDb,
  openStoreDataKey,
} from './setup/index.ts';
import type { CoordinatorDb } from './store/index.ts';

async function openStopped(dataDir: string): Promise<CoordinatorDb> {
  if ((await coordinatorInitState(dataDir)) !== 'complete') {
    throw new LoomError(
      'LOOM_ERR_INVALID_CONFIG',
      `${dataDir} holds no coordinator; run "loom coordinator init --data-dir ${dataDir}" first`,
    );
  }
  return openDataDirDb(dataDir);
}

/** Options of `checkCoordinator`. */
export interface CheckOptions {
  /** Also decrypt every weight blob and check its hash. Default true (it is an offline check). */
  full?: boolean;
  /** Accept what the check finds, as `start --ignore-store-damage` would. Default false. */
  accept?: boolean;
}

/** Runs the store check on a stopped coordinator's data dir. */
export async function checkCoordinator(dataDir: string, options: CheckOptions = {}): Promise<StoreReport> {
  const config: CoordinatorConfig = await resolveCoordinatorConfig(dataDir);
  const db = await openStopped(dataDir);
  try {
    const dataKey = await openStoreDataKey(db, coordinatorKeyProvider(config));
    const deps = {
      db,
      registry: createLevelRegistry(db, { dataKey }),
      jobs: createLevelJobStore(db),
      agents: createLevelAgentDirectory(db),
      tokens: createLevelTokenStore(db),
      audit: createLevelAuditLog(db),
      dataKey,
    };
    const report = await checkStore(deps, { full: options.full ?? true });
    if (options.accept && !report.ok) {
      await acceptStoreProblems(db, report, 'local: loom coordinator check --accept');
      await clearDamage(db.dir);
    }
    return report;
  } finally {
    await db.close();
  }
}

/** The audit check of a data dir, and who made it: this process, or the coordinator running on it. */
export interface AuditCheck extends AuditReport {
  source: 'data-dir' | 'running-coordinator';
}

/**
 * Checks the audit hash chain of the coordinator in `dataDir` against its durable head and names
 * the first broken entry. A stopped coordinator's database is read here; a running one (its
 * database is locked) is asked over its local admin socket.
 */
export async function verifyCoordinatorAudit(dataDir: string): Promise<AuditCheck> {
  let db: CoordinatorDb;
  try {
    db = await openStopped(dataDir);
  } catch (err) {
    if (!isLoomError(err, 'LOOM_ERR_STORE_LOCKED')) throw err;
    return { ...(await auditReportFromRunningCoordinator(dataDir)), source: 'running-coordinator' };
  }
  try {
    return { ...(await auditReport(createLevelAuditLog(db))), source: 'data-dir' };
  } finally {
    await db.close();
  }
}

/**
 * Writes a backup of the coordinator in `dataDir` to `outPath` (mode 0600, written to a temporary
 * file first). A running coordinator is asked over its admin socket; a stopped one is read here.
 */
export async function backupCoordinator(
  dataDir: string,
  outPath: string,
): Promise<BackupSummary | undefined> {
  const tmp = `${outPath}.partial-${process.pid}`;
  let summary: BackupSummary | undefined;
  try {
    let db: CoordinatorDb | undefined;
    try {
      db = await openStopped(dataDir);
    } catch (err) {
      if (!isLoomError(err, 'LOOM_ERR_STORE_LOCKED')) throw err;
    }
    if (db) {
      try {
        summary = await writeBackup(db, dataDir, createWriteStream(tmp, { mode: 0o600 }));
      } finally {
        await db.close();
      }
    } else {
      await backupFromRunningCoordinator(dataDir, createWriteStream(tmp, { mode: 0o600 }));
    }
    await chmod(tmp, 0o600);
    await rename(tmp, outPath);
    return summary;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Verifies a backup file and returns its summary, writing nothing. */
export async function verifyBackupFile(file: string): Promise<BackupSummary> {
  let entries = 0;
  let files = 0;
  const result = await readBackup(createReadStream(file), (r) => {
    if (r.kind === 'entry') entries++;
    else files++;
  });
  return {
    records: result.records,
    entries,
    files,
    sha256: result.sha256,
    commitSeq: result.header.commitSeq,
    dataKeyId: result.header.dataKeyId,
  };
}

/** What `restoreCoordinator` did, and the check it ran after. */
export interface RestoreResult extends BackupSummary {
  /** The store check of the restored data dir; absent when the data key is not available yet. */
  report?: StoreReport;
  /** Where the data key was looked for, when it was not found. */
  dataKeyMissing?: string;
}

/**
 * Restores `file` into `dataDir`, which must not hold a coordinator already, then checks the
 * result when the data key (named in the backup) can be found.
 */
export async function restoreCoordinator(dataDir: string, file: string): Promise<RestoreResult> {
  await access(file).catch((err: unknown) => {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `cannot read backup ${file}`, { cause: err });
  });
  const parts = await findCoordinatorParts(dataDir);
  if (parts.length > 0) {
    throw new LoomError(
      'LOOM_ERR_CONFLICT',
      `${dataDir} already holds (part of) a coordinator (found ${parts.map((p) => p.path).join(', ')}); ` +
        'restore into an empty or new data dir',
      { details: { found: parts.map((p) => p.path) } },
    );
  }
  const summary = await restoreBackup(file, dataDir, dbDir(dataDir));
  const config = await resolveCoordinatorConfig(dataDir);
  try {
    const report = await checkCoordinator(dataDir, { full: true });
    return { ...summary, report };
  } catch (err) {
    if (!isLoomError(err, 'LOOM_ERR_DATA_KEY')) throw err;
    const where = process.env[DATA_KEY_ENV]
      ? `$${DATA_KEY_ENV}`
      : (config.dataKeyCommand ?? config.dataKeyFile ?? defaultDataKeyFile(dataDir));
    return { ...summary, dataKeyMissing: where };
  }
}

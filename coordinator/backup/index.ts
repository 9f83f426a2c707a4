// Public door of coordinator/backup: online backups and restores.

export type { BackupSummary } from './backup.ts';
export { BACKUP_FILES, restoreBackup, writeBackup } from './backup.ts';
export type { BackupHeader, BackupRecord } from './backup-format.ts';
export { readBackup } from './backup-format.ts';

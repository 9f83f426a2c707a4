// `loom coordinator check`, `backup` and `restore`: the care of a coordinator's store.
import { stat } from 'node:fs/promises';
import {
  backupCoordinator,
  checkCoordinator,
  formatStoreReport,
  restoreCoordinator,
  verifyBackupFile,
} from '../coordinator/index.ts';
import { parseFlags, printHelp, stringFlag } from './args.ts';
import { coordinatorBackupSpec, coordinatorCheckSpec, coordinatorRestoreSpec } from './specs.ts';

export async function coordinatorCheck(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(coordinatorCheckSpec, argv);
  if (help) return printHelp(coordinatorCheckSpec);
  const report = await checkCoordinator(stringFlag(flags, 'data-dir')!, {
    full: !flags.quick,
    accept: flags.accept === true,
  });
  if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    process.stdout.write(`${formatStoreReport(report)}\n`);
    if (!report.ok && flags.accept) process.stdout.write('these problems are now accepted (audited)\n');
  }
  return report.ok || flags.accept ? 0 : 1;
}

export async function coordinatorBackup(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(coordinatorBackupSpec, argv);
  if (help) return printHelp(coordinatorBackupSpec);
  const dataDir = stringFlag(flags, 'data-dir')!;
  const out = stringFlag(flags, 'out')!;
  await backupCoordinator(dataDir, out);
  // Read back: what is on disk is what is reported, whichever process wrote it.
  const summary = await verifyBackupFile(out);
  const bytes = (await stat(out)).size;
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ file: out, bytes, ...summary })}\n`);
  } else {
    process.stdout.write(
      [
        `Backup written to ${out} (${bytes.toLocaleString('en-US')} bytes, mode 0600)`,
        `  ${summary.entries.toLocaleString('en-US')} database entries, ${summary.files} files, up to commit #${summary.commitSeq}`,
        `  sha256 ${summary.sha256}`,
        summary.dataKeyId
          ? `  weights are encrypted with data key ${summary.dataKeyId}: a restore needs that key`
          : '',
        '',
      ]
        .filter((l) => l !== '')
        .join('\n') + '\n',
    );
  }
  return 0;
}

export async function coordinatorRestore(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(coordinatorRestoreSpec, argv);
  if (help) return printHelp(coordinatorRestoreSpec);
  const dataDir = stringFlag(flags, 'data-dir')!;
  const result = await restoreCoordinator(dataDir, stringFlag(flags, 'from')!);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    const lines = [
      `Restored ${result.entries.toLocaleString('en-US')} database entries and ${result.files} files into ${dataDir} (commit #${result.commitSeq})`,
    ];
    if (result.report) lines.push(formatStoreReport(result.report));
    if (result.dataKeyMissing) {
      lines.push(
        `The weights are encrypted with data key ${result.dataKeyId}; put that key at ${result.dataKeyMissing} ` +
          '(or set $LOOM_DATA_KEY), then run "loom coordinator check".',
      );
    }
    lines.push(`Start it with: loom coordinator start --data-dir ${dataDir}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return result.report === undefined || result.report.ok ? 0 : 1;
}

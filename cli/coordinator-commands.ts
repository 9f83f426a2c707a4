// `loom coordinator init`, `loom coordinator start` and `loom coordinator admin-token`.
import {
  type CoordinatorPart,
  createAdminToken,
  initCoordinator,
  readCaPassphrase,
  resolveCoordinatorConfig,
  startCoordinator,
} from '../coordinator/index.ts';
import { createLogger } from '../shared/log/index.ts';
import { intFlag, parseFlags, printHelp, stringFlag } from './args.ts';
import { waitForShutdownSignal } from './signals.ts';
import { coordinatorAdminTokenSpec, coordinatorInitSpec, coordinatorStartSpec } from './specs.ts';

/** The list `init --force` prints (on stderr, so `--json` output stays one object) before it deletes. */
function announceRemoval(dataDir: string, parts: CoordinatorPart[]): void {
  const width = Math.max(...parts.map((p) => p.path.length)) + 2;
  process.stderr.write(
    [
      `loom: --force: deleting the coordinator in ${dataDir}:`,
      ...parts.map((p) => `  ${p.path.padEnd(width)}${p.loses}`),
      '',
    ].join('\n'),
  );
}

export async function coordinatorInit(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(coordinatorInitSpec, argv);
  if (help) return printHelp(coordinatorInitSpec);
  const dataDir = stringFlag(flags, 'data-dir')!;
  const hosts = (flags['cert-host'] as string[] | undefined) ?? [];
  const caPassphrase = await readCaPassphrase(stringFlag(flags, 'ca-passphrase-file'));
  const result = await initCoordinator({
    dataDir,
    hosts,
    ...(caPassphrase === undefined ? {} : { caPassphrase }),
    force: flags.force === true,
    beforeRemove: (parts) => announceRemoval(dataDir, parts),
  });
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({
        adminToken: result.adminToken,
        caFingerprint: result.caFingerprint,
        hosts: result.hosts,
        removed: result.removed,
      })}\n`,
    );
    return 0;
  }
  process.stdout.write(
    [
      `Coordinator initialised in ${dataDir}`,
      `  certificate hosts: ${result.hosts.join(', ')}`,
      `  CA fingerprint:    ${result.caFingerprint}`,
      '',
      'Admin API token (shown once; store it safely):',
      `  ${result.adminToken}`,
      '',
      `Start it with: loom coordinator start --data-dir ${dataDir}`,
      '',
    ].join('\n'),
  );
  return 0;
}

export async function coordinatorStart(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(coordinatorStartSpec, argv);
  if (help) return printHelp(coordinatorStartSpec);
  const config = await resolveCoordinatorConfig(stringFlag(flags, 'data-dir')!, {
    ...(flags.bind !== undefined ? { host: stringFlag(flags, 'bind') } : {}),
    ...(flags['api-port'] !== undefined ? { apiPort: intFlag(flags, 'api-port', 0) } : {}),
    ...(flags['agent-port'] !== undefined ? { agentPort: intFlag(flags, 'agent-port', 0) } : {}),
    ...(flags['log-format'] ? { logFormat: stringFlag(flags, 'log-format') as 'text' | 'json' } : {}),
  });
  const log = createLogger({ format: config.logFormat, component: 'coordinator' });
  const running = await startCoordinator(config, log, {
    ignoreStoreDamage: flags['ignore-store-damage'] === true,
  });
  // Listening before the ready line goes out: a supervisor may send SIGTERM the moment it reads it.
  const stopSignal = waitForShutdownSignal();
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({
        apiUrl: running.apiUrl,
        apiPort: running.apiPort,
        agentPort: running.agentPort,
        caFingerprint: running.caFingerprint,
        backend: running.backend.name,
      })}\n`,
    );
  }
  const signal = await stopSignal;
  log.info('shutting down', { signal });
  await running.stop();
  return 0;
}

export async function coordinatorAdminToken(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(coordinatorAdminTokenSpec, argv);
  if (help) return printHelp(coordinatorAdminTokenSpec);
  const dataDir = stringFlag(flags, 'data-dir')!;
  const name = stringFlag(flags, 'name');
  const result = await createAdminToken({ dataDir, ...(name !== undefined ? { name } : {}) });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ adminToken: result.adminToken })}\n`);
    return 0;
  }
  process.stdout.write(
    [
      `New admin API token "${result.name}" (id ${result.id}; shown once, store it safely):`,
      `  ${result.adminToken}`,
      '',
      'Revoke lost tokens with POST /v1/tokens/<id>/revoke once the coordinator runs again.',
      '',
    ].join('\n'),
  );
  return 0;
}

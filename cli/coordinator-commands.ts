// `loom coordinator init` and `loom coordinator start`.
import { initCoordinator, resolveCoordinatorConfig, startCoordinator } from '../coordinator/index.ts';
import { createLogger } from '../shared/log/index.ts';
import { type CommandSpec, helpText, intFlag, parseFlags, stringFlag } from './args.ts';
import { waitForShutdownSignal } from './signals.ts';

export const coordinatorInitSpec: CommandSpec = {
  usage: 'loom coordinator init --data-dir DIR [--host NAME_OR_IP ...] [--json]',
  summary:
    'Creates a coordinator: its CA (key stays here, mode 0600), a server certificate for its names and\n' +
    'addresses, and the first admin API token, printed once (only its hash is stored).',
  flags: {
    'data-dir': { type: 'string', description: 'folder for the coordinator state', required: true },
    host: {
      type: 'string',
      multiple: true,
      description: 'DNS name or IP address agents and operators use to reach this coordinator',
      default: 'localhost, 127.0.0.1, ::1',
    },
    json: { type: 'boolean', description: 'print one JSON object {adminToken, caFingerprint}' },
  },
};

export async function coordinatorInit(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(coordinatorInitSpec, argv);
  if (help) return printHelp(coordinatorInitSpec);
  const dataDir = stringFlag(flags, 'data-dir')!;
  const hosts = (flags.host as string[] | undefined) ?? [];
  const result = await initCoordinator({ dataDir, hosts });
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ adminToken: result.adminToken, caFingerprint: result.caFingerprint })}\n`,
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

export const coordinatorStartSpec: CommandSpec = {
  usage: 'loom coordinator start --data-dir DIR [--host ADDR] [--api-port P] [--agent-port P] [--json]',
  summary:
    'Runs the coordinator: the operator API (HTTPS, bearer tokens) and the agent gateway (WSS with client\n' +
    'certificates). Port 0 picks a free port; the ports in use are logged. Settings come from flags, then\n' +
    'LOOM_* environment variables, then DIR/coordinator.json.',
  flags: {
    'data-dir': { type: 'string', description: 'folder created by "loom coordinator init"', required: true },
    host: { type: 'string', description: 'address to bind', default: '0.0.0.0' },
    'api-port': { type: 'string', description: 'operator API port', default: '8443' },
    'agent-port': { type: 'string', description: 'agent gateway port', default: '8444' },
    'log-format': { type: 'string', description: 'text or json log lines on stderr', default: 'text' },
    json: {
      type: 'boolean',
      description: 'print one JSON line {apiUrl, apiPort, agentPort, caFingerprint} when ready',
    },
  },
};

export async function coordinatorStart(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(coordinatorStartSpec, argv);
  if (help) return printHelp(coordinatorStartSpec);
  const config = await resolveCoordinatorConfig(stringFlag(flags, 'data-dir')!, {
    ...(flags.host ? { host: stringFlag(flags, 'host') } : {}),
    ...(flags['api-port'] !== undefined ? { apiPort: intFlag(flags, 'api-port', 0) } : {}),
    ...(flags['agent-port'] !== undefined ? { agentPort: intFlag(flags, 'agent-port', 0) } : {}),
    ...(flags['log-format'] ? { logFormat: stringFlag(flags, 'log-format') as 'text' | 'json' } : {}),
  });
  const log = createLogger({ format: config.logFormat, component: 'coordinator' });
  const running = await startCoordinator(config, log);
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
  const signal = await waitForShutdownSignal();
  log.info('shutting down', { signal });
  await running.stop();
  return 0;
}

export function printHelp(spec: CommandSpec): number {
  process.stdout.write(`${helpText(spec)}\n`);
  return 0;
}

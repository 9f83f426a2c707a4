// `loom agent enroll` and `loom agent start`.
import { EdgeAgent, enrollAgent } from '../edge-agent/index.ts';
import { LoomError } from '../shared/errors/index.ts';
import { createLogger } from '../shared/log/index.ts';
import { type CommandSpec, intFlag, parseFlags, stringFlag } from './args.ts';
import { printHelp } from './coordinator-commands.ts';
import { waitForShutdownSignal } from './signals.ts';

export const agentEnrollSpec: CommandSpec = {
  usage:
    'loom agent enroll --coordinator https://HOST:PORT --token TOKEN --data-dir DIR [--name NAME] [--json]',
  summary:
    'Enrolls this host as an edge agent: makes a key pair here (it never leaves the host), pins the\n' +
    "coordinator's CA by the fingerprint inside the token, sends a CSR and saves the signed certificate.",
  flags: {
    coordinator: { type: 'string', description: 'operator API URL of the coordinator', required: true },
    token: { type: 'string', description: 'one-time enrollment token from the operator', required: true },
    'data-dir': { type: 'string', description: 'folder for the agent identity and models', required: true },
    name: { type: 'string', description: 'display name of this site', default: 'the host name' },
    json: { type: 'boolean', description: 'print one JSON object {agentId, name, agentUrl}' },
  },
};

export async function agentEnroll(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(agentEnrollSpec, argv);
  if (help) return printHelp(agentEnrollSpec);
  const name = stringFlag(flags, 'name');
  const identity = await enrollAgent({
    coordinatorUrl: stringFlag(flags, 'coordinator')!,
    token: stringFlag(flags, 'token')!,
    dataDir: stringFlag(flags, 'data-dir')!,
    ...(name ? { name } : {}),
  });
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ agentId: identity.agentId, name: identity.name, agentUrl: identity.agentUrl })}\n`,
    );
  } else {
    process.stdout.write(
      `Enrolled as ${identity.agentId} (${identity.name}); certificate valid, CA pinned.\n` +
        `Start it with: loom agent start --data-dir ${stringFlag(flags, 'data-dir')} --data PATH\n`,
    );
  }
  return 0;
}

export const agentStartSpec: CommandSpec = {
  usage:
    'loom agent start --data-dir DIR --data PATH [--format idx|csv|jsonl] [--label-column C] [--inference-port P] [--json]',
  summary:
    'Runs the edge agent: serves local models over the Open Inference Protocol v2 (also offline), connects\n' +
    'to the coordinator with mutual TLS, trains on the local data when asked and sends back only updates.',
  flags: {
    'data-dir': { type: 'string', description: 'folder given to "loom agent enroll"', required: true },
    data: {
      type: 'string',
      description: 'local training data: IDX images file, CSV or JSONL',
      required: true,
    },
    format: { type: 'string', description: 'idx, csv or jsonl', default: 'from the file extension' },
    'label-column': { type: 'string', description: 'CSV column holding the label', default: 'label' },
    'inference-host': {
      type: 'string',
      description: 'address of the inference server',
      default: '127.0.0.1',
    },
    'inference-port': {
      type: 'string',
      description: 'port of the inference server (0: any free port)',
      default: '8501',
    },
    'log-format': { type: 'string', description: 'text or json log lines on stderr', default: 'text' },
    json: {
      type: 'boolean',
      description: 'print one JSON line {agentId, inferenceUrl, examples} when ready',
    },
  },
};

export async function agentStart(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(agentStartSpec, argv);
  if (help) return printHelp(agentStartSpec);
  const format = stringFlag(flags, 'format');
  if (format !== undefined && !['idx', 'csv', 'jsonl'].includes(format)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--format must be idx, csv or jsonl');
  }
  const logFormat = stringFlag(flags, 'log-format') ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--log-format must be text or json');
  }
  const log = createLogger({ format: logFormat, component: 'agent' });
  const labelColumn = stringFlag(flags, 'label-column');
  const agent = new EdgeAgent({
    dataDir: stringFlag(flags, 'data-dir')!,
    dataPath: stringFlag(flags, 'data')!,
    ...(format ? { format: format as 'idx' | 'csv' | 'jsonl' } : {}),
    ...(labelColumn ? { labelColumn } : {}),
    inferenceHost: stringFlag(flags, 'inference-host') ?? '127.0.0.1',
    inferencePort: intFlag(flags, 'inference-port', 8501),
    log,
  });
  await agent.start();
  if (flags.json) {
    const s = agent.status();
    process.stdout.write(
      `${JSON.stringify({ agentId: s.agentId, name: s.name, inferenceUrl: s.inferenceUrl, examples: s.examples, backend: s.backend })}\n`,
    );
  }
  const signal = await waitForShutdownSignal();
  log.info('shutting down', { signal });
  await agent.stop();
  return 0;
}

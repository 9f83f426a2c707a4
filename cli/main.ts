// The `loom` command: dispatches subcommands and turns every failure into one line and a
// non-zero exit code. Commands load lazily so `--help` and usage errors answer at once.
import { isLoomError } from '../shared/errors/index.ts';
import { LOOM_VERSION } from '../shared/version/index.ts';
import { type CommandEntry, nearest, parseFlags, printHelp } from './args.ts';
import { OPERATOR_COMMANDS } from './operator/index.ts';
import {
  agentApiKeyCreateSpec,
  agentApiKeyListSpec,
  agentApiKeyRevokeSpec,
  agentCheckSpec,
  agentEnrollSpec,
  agentStartSpec,
  coordinatorAdminTokenSpec,
  coordinatorBackupSpec,
  coordinatorCheckSpec,
  coordinatorInitSpec,
  coordinatorRestoreSpec,
  coordinatorStartSpec,
  demoSpec,
} from './specs.ts';

const COMMANDS: Record<string, CommandEntry> = {
  'coordinator init': {
    spec: coordinatorInitSpec,
    brief: 'create a coordinator (CA, server certificate, admin token)',
    load: async () => (await import('./coordinator-commands.ts')).coordinatorInit,
  },
  'coordinator start': {
    spec: coordinatorStartSpec,
    brief: 'run the operator API and the agent gateway',
    load: async () => (await import('./coordinator-commands.ts')).coordinatorStart,
  },
  'coordinator admin-token': {
    spec: coordinatorAdminTokenSpec,
    brief: 'make a new admin API token (with the coordinator stopped)',
    load: async () => (await import('./coordinator-commands.ts')).coordinatorAdminToken,
  },
  'coordinator check': {
    spec: coordinatorCheckSpec,
    brief: "check a stopped coordinator's store for damage",
    load: async () => (await import('./store-commands.ts')).coordinatorCheck,
  },
  'coordinator backup': {
    spec: coordinatorBackupSpec,
    brief: 'write a consistent backup (running or stopped)',
    load: async () => (await import('./store-commands.ts')).coordinatorBackup,
  },
  'coordinator restore': {
    spec: coordinatorRestoreSpec,
    brief: 'restore a backup into an empty data dir',
    load: async () => (await import('./store-commands.ts')).coordinatorRestore,
  },
  'agent enroll': {
    spec: agentEnrollSpec,
    brief: 'enroll this host with a one-time token',
    load: async () => (await import('./agent-commands.ts')).agentEnroll,
  },
  'agent start': {
    spec: agentStartSpec,
    brief: 'run an edge agent (local training + local inference)',
    load: async () => (await import('./agent-commands.ts')).agentStart,
  },
  'agent check': {
    spec: agentCheckSpec,
    brief: "check a stopped agent's model store for damage",
    load: async () => (await import('./agent-commands.ts')).agentCheck,
  },
  demo: {
    spec: demoSpec,
    brief: 'run a whole federation on MNIST on this machine',
    load: async () => (await import('./demo.ts')).demo,
  },
  // Edge serving: inference API keys.
  'agent api-key create': {
    spec: agentApiKeyCreateSpec,
    brief: "make an API key for the agent's inference API (shown once)",
    load: async () => (await import('./api-key-commands.ts')).agentApiKeyCreate,
  },
  'agent api-key list': {
    spec: agentApiKeyListSpec,
    brief: 'list the inference API keys (never the keys)',
    load: async () => (await import('./api-key-commands.ts')).agentApiKeyList,
  },
  'agent api-key revoke': {
    spec: agentApiKeyRevokeSpec,
    brief: 'revoke an inference API key',
    load: async () => (await import('./api-key-commands.ts')).agentApiKeyRevoke,
  },
  // The operator's commands: clients of the operator API (cli/operator/).
  ...OPERATOR_COMMANDS,
};

/** Command groups: the first word of two-word commands. */
const GROUPS = [...new Set(Object.keys(COMMANDS).flatMap((k) => (k.includes(' ') ? [k.split(' ')[0]] : [])))];

function commandList(names: string[], strip = ''): string[] {
  const width = Math.max(...names.map((n) => n.length - strip.length)) + 3;
  return names.map((n) => `  ${n.slice(strip.length).padEnd(width)}${COMMANDS[n].brief}`);
}

const USAGE = [
  'Usage: loom <command> [options]',
  '',
  `Loom ${LOOM_VERSION}: federated learning across edge sites over mutual TLS.`,
  '',
  'Commands:',
  ...commandList(Object.keys(COMMANDS)),
  '',
  'Options:',
  '  --version   print the version (with --json: {"version": "..."})',
  '  --help      show this help',
  '',
  'Run "loom <command> --help" for the options of each command.',
  '',
].join('\n');

function groupUsage(group: string): string {
  const names = Object.keys(COMMANDS).filter((k) => k.startsWith(`${group} `));
  return [
    `Usage: loom ${group} <command> [options]`,
    '',
    'Commands:',
    ...commandList(names, `${group} `),
    '',
    `Run "loom ${group} <command> --help" for the options of each command.`,
    '',
  ].join('\n');
}

const isHelp = (arg: string | undefined): boolean => arg === '--help' || arg === '-h' || arg === 'help';

/** Runs `loom` with `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first, second] = argv;
  if (!first || isHelp(first)) {
    process.stdout.write(USAGE);
    return first ? 0 : 1;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    const json = argv.slice(1).includes('--json');
    process.stdout.write(json ? `${JSON.stringify({ version: LOOM_VERSION })}\n` : `loom ${LOOM_VERSION}\n`);
    return 0;
  }
  if (GROUPS.includes(first) && (second === undefined || isHelp(second))) {
    process.stdout.write(groupUsage(first));
    return second === undefined ? 1 : 0;
  }
  const twoWord = `${first} ${second ?? ''}`.trim();
  // Edge serving: three-word commands (`agent api-key create`) are looked up first.
  const threeWord = `${twoWord} ${argv[2] ?? ''}`.trim();
  const name = COMMANDS[threeWord] ? threeWord : COMMANDS[twoWord] ? twoWord : first;
  const entry = COMMANDS[name];
  const subcommands = Object.keys(COMMANDS)
    .filter((c) => c.startsWith(`${twoWord} `))
    .map((c) => c.slice(twoWord.length + 1));
  if (!entry && subcommands.length > 0) {
    const asked = argv.slice(2).some((a) => a === '--help' || a === '-h');
    (asked ? process.stdout : process.stderr).write(
      `${asked ? '' : 'loom: '}"loom ${twoWord}" takes a subcommand: ${subcommands.join(', ')}; ` +
        `run "loom ${twoWord} <subcommand> --help"\n`,
    );
    return asked ? 0 : 2;
  }
  if (!entry) {
    const tried = GROUPS.includes(first) ? twoWord : first;
    const candidates = GROUPS.includes(first)
      ? Object.keys(COMMANDS).filter((k) => k.startsWith(`${first} `))
      : [...Object.keys(COMMANDS), ...GROUPS];
    const guess = nearest(tried, candidates);
    const help = GROUPS.includes(first) ? `loom ${first} --help` : 'loom --help';
    process.stderr.write(
      `loom: unknown command "${tried}"${guess ? `; did you mean "${guess}"?` : ''} (run "${help}")\n`,
    );
    return 2;
  }
  const rest = argv.slice(name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) return printHelp(entry.spec);
  try {
    // Flags are checked before the command (and TensorFlow.js) loads, so usage errors are instant.
    const { warnings } = parseFlags(entry.spec, rest);
    for (const w of warnings) process.stderr.write(`loom: warning: ${w}\n`);
    const command = await entry.load();
    return await command(rest);
  } catch (err) {
    if (isLoomError(err)) {
      process.stderr.write(`loom: ${err.message} [${err.code}]\n`);
      if (process.env.LOOM_DEBUG && err.cause)
        process.stderr.write(`${String((err.cause as Error).stack ?? err.cause)}\n`);
      return 1;
    }
    process.stderr.write(
      `loom: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  }
}

// The `loom` command: dispatches subcommands and turns every failure into one line and a
// non-zero exit code. Commands load lazily so `--help` and usage errors answer at once.
import { isLoomError } from '../shared/errors/index.ts';
import { type CommandSpec, parseFlags, printHelp } from './args.ts';
import {
  agentApiKeyCreateSpec,
  agentApiKeyListSpec,
  agentApiKeyRevokeSpec,
  agentEnrollSpec,
  agentStartSpec,
  coordinatorAdminTokenSpec,
  coordinatorInitSpec,
  coordinatorStartSpec,
  demoSpec,
} from './specs.ts';

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { spec: CommandSpec; load: () => Promise<Command> }> = {
  'coordinator init': {
    spec: coordinatorInitSpec,
    load: async () => (await import('./coordinator-commands.ts')).coordinatorInit,
  },
  'coordinator start': {
    spec: coordinatorStartSpec,
    load: async () => (await import('./coordinator-commands.ts')).coordinatorStart,
  },
  'coordinator admin-token': {
    spec: coordinatorAdminTokenSpec,
    load: async () => (await import('./coordinator-commands.ts')).coordinatorAdminToken,
  },
  'agent enroll': {
    spec: agentEnrollSpec,
    load: async () => (await import('./agent-commands.ts')).agentEnroll,
  },
  'agent start': { spec: agentStartSpec, load: async () => (await import('./agent-commands.ts')).agentStart },
  demo: { spec: demoSpec, load: async () => (await import('./demo.ts')).demo },
  // Edge serving: inference API keys.
  'agent api-key create': {
    spec: agentApiKeyCreateSpec,
    load: async () => (await import('./api-key-commands.ts')).agentApiKeyCreate,
  },
  'agent api-key list': {
    spec: agentApiKeyListSpec,
    load: async () => (await import('./api-key-commands.ts')).agentApiKeyList,
  },
  'agent api-key revoke': {
    spec: agentApiKeyRevokeSpec,
    load: async () => (await import('./api-key-commands.ts')).agentApiKeyRevoke,
  },
};

const USAGE = `Usage: loom <command> [options]

Loom: federated learning across edge sites over mutual TLS.

Commands:
  coordinator init          create a coordinator (CA, server certificate, admin token)
  coordinator start         run the operator API and the agent gateway
  coordinator admin-token   make a new admin API token (with the coordinator stopped)
  agent enroll              enroll this host with a one-time token
  agent start               run an edge agent (local training + local inference)
  agent api-key create      make an API key for the agent's inference API (shown once)
  agent api-key list        list the inference API keys (never the keys)
  agent api-key revoke ID   revoke an inference API key
  demo                      run a whole federation on MNIST on this machine

Run "loom <command> --help" for the options of each command.
`;

export async function main(argv: string[]): Promise<number> {
  const [first, second] = argv;
  if (!first || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(USAGE);
    return first ? 0 : 1;
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
    process.stderr.write(`loom: unknown command "${twoWord}"; run "loom --help"\n`);
    return 2;
  }
  const rest = argv.slice(name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) return printHelp(entry.spec);
  try {
    // Flags are checked before the command (and TensorFlow.js) loads, so usage errors are instant.
    parseFlags(entry.spec, rest);
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

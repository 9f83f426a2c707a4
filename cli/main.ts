// The `loom` command: dispatches subcommands and turns every failure into one line and a
// non-zero exit code. Commands load lazily so `--help` and usage errors answer at once.
import { isLoomError } from '../shared/errors/index.ts';
import { type CommandSpec, parseFlags, printHelp } from './args.ts';
import {
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
  'coordinator check': {
    spec: coordinatorCheckSpec,
    load: async () => (await import('./store-commands.ts')).coordinatorCheck,
  },
  'coordinator backup': {
    spec: coordinatorBackupSpec,
    load: async () => (await import('./store-commands.ts')).coordinatorBackup,
  },
  'coordinator restore': {
    spec: coordinatorRestoreSpec,
    load: async () => (await import('./store-commands.ts')).coordinatorRestore,
  },
  'agent enroll': {
    spec: agentEnrollSpec,
    load: async () => (await import('./agent-commands.ts')).agentEnroll,
  },
  'agent start': { spec: agentStartSpec, load: async () => (await import('./agent-commands.ts')).agentStart },
  'agent check': { spec: agentCheckSpec, load: async () => (await import('./agent-commands.ts')).agentCheck },
  demo: { spec: demoSpec, load: async () => (await import('./demo.ts')).demo },
};

const USAGE = `Usage: loom <command> [options]

Loom: federated learning across edge sites over mutual TLS.

Commands:
  coordinator init          create a coordinator (CA, server certificate, admin token)
  coordinator start         run the operator API and the agent gateway
  coordinator admin-token   make a new admin API token (with the coordinator stopped)
  coordinator check         check a stopped coordinator's store for damage
  coordinator backup        write a consistent backup (running or stopped)
  coordinator restore       restore a backup into an empty data dir
  agent enroll              enroll this host with a one-time token
  agent start               run an edge agent (local training + local inference)
  agent check               check a stopped agent's model store for damage
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
  const entry = COMMANDS[twoWord] ?? COMMANDS[first];
  if (!entry) {
    process.stderr.write(`loom: unknown command "${twoWord}"; run "loom --help"\n`);
    return 2;
  }
  const rest = COMMANDS[twoWord] ? argv.slice(2) : argv.slice(1);
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

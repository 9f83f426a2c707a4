// The `loom` command: dispatches subcommands and turns every failure into one line and a
// non-zero exit code.
import { isLoomError } from '../shared/errors/index.ts';
import { agentEnroll, agentStart } from './agent-commands.ts';
import { coordinatorInit, coordinatorStart } from './coordinator-commands.ts';
import { demo } from './demo.ts';

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  'coordinator init': coordinatorInit,
  'coordinator start': coordinatorStart,
  'agent enroll': agentEnroll,
  'agent start': agentStart,
  demo,
};

const USAGE = `Usage: loom <command> [options]

Loom: federated learning across edge sites over mutual TLS.

Commands:
  coordinator init    create a coordinator (CA, server certificate, admin token)
  coordinator start   run the operator API and the agent gateway
  agent enroll        enroll this host with a one-time token
  agent start         run an edge agent (local training + local inference)
  demo                run a whole federation on MNIST on this machine

Run "loom <command> --help" for the options of each command.
`;

export async function main(argv: string[]): Promise<number> {
  const [first, second] = argv;
  if (!first || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(USAGE);
    return first ? 0 : 1;
  }
  const twoWord = `${first} ${second ?? ''}`.trim();
  const command = COMMANDS[twoWord] ?? COMMANDS[first];
  if (!command) {
    process.stderr.write(`loom: unknown command "${twoWord}"; run "loom --help"\n`);
    return 2;
  }
  const rest = COMMANDS[twoWord] ? argv.slice(2) : argv.slice(1);
  try {
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

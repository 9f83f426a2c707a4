// Runs `loom agent start` as a child process (the demo and the round benchmark): its JSON
// status line tells when it is ready; SIGTERM stops it cleanly.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LoomError } from '../shared/errors/index.ts';

const CLI_PATH = fileURLToPath(new URL('./loom.js', import.meta.url));

export interface AgentProcess {
  name: string;
  child: ChildProcess;
  ready: Promise<{ agentId: string; inferenceUrl: string }>;
}

/**
 * Starts `loom agent start` as a child process; `ready` resolves with its JSON status line.
 * `threads`: its training threads (default: the agent's own default, one per core); `extraArgs`
 * go after the ones given here (e.g. `['--health-interval', '1']`; default none).
 */
export function startAgentProcess(
  name: string,
  dataDir: string,
  dataPath: string,
  logPath: string,
  opts: { threads?: number; extraArgs?: readonly string[] } = {},
): AgentProcess {
  const child = spawn(
    process.execPath,
    [
      CLI_PATH,
      'agent',
      'start',
      '--data-dir',
      dataDir,
      '--data',
      dataPath,
      '--inference-port',
      '0',
      ...(opts.threads === undefined ? [] : ['--threads', String(opts.threads)]),
      '--json',
      ...(opts.extraArgs ?? []),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOOM_LOG_LEVEL: process.env.LOOM_LOG_LEVEL ?? 'info' },
    },
  );
  const log = createWriteStream(logPath);
  child.stderr?.pipe(log);
  const ready = new Promise<{ agentId: string; inferenceUrl: string }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      try {
        resolve(JSON.parse(line) as { agentId: string; inferenceUrl: string });
      } catch {
        reject(new LoomError('LOOM_ERR_INTERNAL', `${name} printed an unexpected line: ${line}`));
      }
    });
    child.once('exit', (code) =>
      reject(
        new LoomError(
          'LOOM_ERR_INTERNAL',
          `${name} exited with code ${code} before it was ready; see ${logPath}`,
        ),
      ),
    );
  });
  return { name, child, ready };
}

/** SIGTERM, then SIGKILL after 5 s. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

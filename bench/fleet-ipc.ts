// Messages between the fleet bench's driver and its child processes (the coordinator, the agent
// emulators), over Node's IPC channel, and the clock they all stamp times with.
import type { ChildProcess } from 'node:child_process';

/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes on one host. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

// --- driver → coordinator process ------------------------------------------------------------

export type ToCoordinator =
  | { type: 'start'; dataDir: string; logPath: string }
  | { type: 'await-online'; count: number }
  | { type: 'stats' }
  | { type: 'stop' };

/** Timestamps (nowMs) of one round as the coordinator saw it. */
export interface RoundTiming {
  round: number;
  state: string;
  /** The round's `round-started` event: weights encoded, aggregator ready. */
  startedAt: number;
  /** Its last `task-sent` event. */
  lastTaskSentAt: number;
  /** Its last `update-received` event. */
  lastUpdateAt: number;
  /** `round-ended`: the average and the server step done. */
  endedAt: number;
  /** The registry version and the round record committed (the job's `round complete` log line). */
  writtenAt?: number;
  tasks: number;
  updates: number;
  failures: number;
}

export interface CoordinatorStats {
  /** Event-loop delay since the previous stats call, in ms. */
  loopDelay: { maxMs: number; p99Ms: number; meanMs: number };
  heapUsedMB: number;
  externalMB: number;
  arrayBuffersMB: number;
  sessions: number;
  /** Sessions that ended since the coordinator started, by reason. */
  offline: Record<string, number>;
  /** Warnings and errors the coordinator logged, by message. */
  warnings: Record<string, number>;
}

export type FromCoordinator =
  | { type: 'ready'; apiUrl: string; agentPort: number; adminToken: string; caFingerprint: string }
  | { type: 'online'; count: number; at: number }
  | { type: 'round'; timing: RoundTiming }
  | { type: 'job-finished'; jobId: string; state: string; at: number; error?: string }
  | { type: 'stats'; stats: CoordinatorStats }
  | { type: 'failed'; message: string };

// --- driver → agent emulator process ---------------------------------------------------------

export interface EmulatorSetup {
  /** Index of the first agent this process emulates; it holds agents [from, from + count). */
  from: number;
  count: number;
  apiUrl: string;
  agentUrl: string;
  caPem: string;
  adminToken: string;
  /** Simulated training time before each result (ms). */
  trainMs: number;
  /** Enrollments in flight at once. */
  enrollConcurrency: number;
  /** TLS handshakes in flight at once. */
  connectConcurrency: number;
}

export type ToEmulator =
  | { type: 'generate'; chunks: number[] }
  | { type: 'setup'; setup: EmulatorSetup }
  | { type: 'enroll' }
  | { type: 'connect' }
  | { type: 'report' }
  | { type: 'stop' };

/** What one emulator process saw of one round. */
export interface EmulatorRound {
  round: number;
  trains: number;
  firstTrainAt: number;
  lastTrainAt: number;
  lastResultAt: number;
  /** Results sent, by agent id. */
  results: Record<string, number>;
}

export interface EmulatorReport {
  rounds: EmulatorRound[];
  /** Connections that closed after their welcome, by close code. */
  closes: Record<string, number>;
  reconnects: number;
  deploys: number;
  lastDeployAt: number;
  errors: Record<string, number>;
}

export type FromEmulator =
  | { type: 'generated'; ms: number }
  | { type: 'enrolled'; ms: number; agentIds: string[] }
  | {
      type: 'connected';
      ms: number;
      /** Per agent, connect → welcome (ms): median, 99th percentile, max. */
      latency: { p50: number; p99: number; max: number };
      failed: number;
    }
  | { type: 'report'; report: EmulatorReport }
  | { type: 'failed'; message: string };

/** Resolves with the next message of `type` from `child`; rejects on its `failed` message or exit. */
export function nextMessage<M extends { type: string }, T extends M['type']>(
  child: ChildProcess,
  type: T,
): Promise<Extract<M, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: M): void => {
      if (msg.type === type) {
        done();
        resolve(msg as Extract<M, { type: T }>);
      } else if (msg.type === 'failed') {
        done();
        reject(new Error((msg as unknown as { message: string }).message));
      }
    };
    const onExit = (code: number | null): void => {
      done();
      reject(
        new Error(`child process ${child.pid} exited (code ${code}) while the bench waited for "${type}"`),
      );
    };
    const done = (): void => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** Sends a message to a child; typed per child kind. */
export function send<M>(child: ChildProcess, msg: M): void {
  child.send(msg as unknown as object);
}

// The fleet bench's coordinator process: a real coordinator on a fresh data dir (ports 0, no
// enrollment rate limit), alone in its process so the driver can read its RSS and CPU from /proc.
// It reports, over IPC, when the fleet is online, each round's timestamps (from the job's events
// and its "round complete" log line), and its event-loop delay and heap on request.
import { createWriteStream } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  initCoordinator,
  type RunningCoordinator,
  resolveCoordinatorConfig,
  startCoordinator,
} from '../coordinator/index.ts';
import { createLogger, type Logger } from '../shared/log/index.ts';
import { type FromCoordinator, nowMs, type RoundTiming, type ToCoordinator } from './fleet-ipc.ts';

type Entry = (
  level: 'warn' | 'error' | 'info',
  component: string | undefined,
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/** Passes every line to `base` and shows it to `onEntry` first: how the bench sees what the coordinator logs. */
function tappedLogger(base: Logger, onEntry: Entry, component?: string): Logger {
  return {
    debug: (msg, fields) => base.debug(msg, fields),
    info: (msg, fields) => {
      onEntry('info', component, msg, fields);
      base.info(msg, fields);
    },
    warn: (msg, fields) => {
      onEntry('warn', component, msg, fields);
      base.warn(msg, fields);
    },
    error: (msg, fields) => {
      onEntry('error', component, msg, fields);
      base.error(msg, fields);
    },
    child: (name) => tappedLogger(base.child(name), onEntry, name),
  };
}

const MB = 1024 * 1024;

function reply(msg: FromCoordinator): void {
  process.send?.(msg);
}

let coordinator: RunningCoordinator | undefined;
const timings = new Map<number, RoundTiming>();
const offline: Record<string, number> = {};
const warnings: Record<string, number> = {};
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

const onEntry: Entry = (level, component, msg, fields) => {
  if (level !== 'info') warnings[msg] = (warnings[msg] ?? 0) + 1;
  if (component === 'jobs' && msg === 'round complete') {
    const t = timings.get(fields?.round as number);
    if (t) {
      t.writtenAt = nowMs();
      reply({ type: 'round', timing: t });
    }
  }
};

function watchJobs(c: RunningCoordinator): void {
  c.jobs.on('event', (e) => {
    const at = nowMs();
    if (e.type === 'job-finished') {
      reply({
        type: 'job-finished',
        jobId: e.jobId,
        state: e.state,
        at,
        ...(e.error ? { error: e.error.message } : {}),
      });
      return;
    }
    if (!('round' in e)) return;
    let t = timings.get(e.round);
    if (e.type === 'round-started' || !t) {
      t = {
        round: e.round,
        state: 'collecting',
        startedAt: at,
        lastTaskSentAt: at,
        lastUpdateAt: at,
        endedAt: at,
        tasks: 0,
        updates: 0,
        failures: 0,
      };
      timings.set(e.round, t);
    }
    if (e.type === 'task-sent') {
      t.lastTaskSentAt = at;
      t.tasks++;
    } else if (e.type === 'update-received') {
      t.lastUpdateAt = at;
      t.updates++;
    } else if (e.type === 'agent-failed') t.failures++;
    else if (e.type === 'round-ended') {
      t.endedAt = at;
      t.state = e.state;
      // A round that wrote nothing has no "round complete" line to wait for.
      if (e.state !== 'completed') reply({ type: 'round', timing: t });
    }
  });
}

function awaitOnline(c: RunningCoordinator, count: number): void {
  const check = (): boolean => {
    if (c.gateway.onlineAgentIds().length < count) return false;
    c.gateway.off('online', onOnline);
    reply({ type: 'online', count: c.gateway.onlineAgentIds().length, at: nowMs() });
    return true;
  };
  const onOnline = (): void => {
    check();
  };
  c.gateway.on('online', onOnline);
  check();
}

async function start(dataDir: string, logPath: string): Promise<void> {
  const init = await initCoordinator({ dataDir, hosts: ['127.0.0.1'] });
  const config = await resolveCoordinatorConfig(dataDir, {
    host: '127.0.0.1',
    apiPort: 0,
    agentPort: 0,
    // Every emulated site enrolls from this machine's one address.
    enrollRatePerMinute: 0,
  });
  const file = createWriteStream(logPath);
  const log = tappedLogger(
    createLogger({ format: 'json', write: (line) => file.write(`${line}\n`) }),
    onEntry,
  );
  const c = await startCoordinator(config, log);
  coordinator = c;
  c.gateway.on('offline', ({ reason }) => {
    offline[reason] = (offline[reason] ?? 0) + 1;
  });
  watchJobs(c);
  reply({
    type: 'ready',
    apiUrl: c.apiUrl,
    agentPort: c.agentPort,
    adminToken: init.adminToken,
    caFingerprint: c.caFingerprint,
  });
}

process.on('message', (msg: ToCoordinator) => {
  const fail = (err: unknown): void =>
    reply({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  switch (msg.type) {
    case 'start':
      start(msg.dataDir, msg.logPath).catch(fail);
      return;
    case 'await-online':
      if (coordinator) awaitOnline(coordinator, msg.count);
      return;
    case 'stats': {
      const mem = process.memoryUsage();
      reply({
        type: 'stats',
        stats: {
          loopDelay: {
            maxMs: loop.max / 1e6,
            p99Ms: loop.percentile(99) / 1e6,
            meanMs: loop.mean / 1e6,
          },
          heapUsedMB: mem.heapUsed / MB,
          externalMB: mem.external / MB,
          arrayBuffersMB: mem.arrayBuffers / MB,
          sessions: coordinator?.gateway.onlineAgentIds().length ?? 0,
          offline: { ...offline },
          warnings: { ...warnings },
        },
      });
      loop.reset();
      return;
    }
    case 'stop':
      (coordinator?.stop() ?? Promise.resolve()).then(
        () => process.exit(0),
        (err: unknown) => {
          fail(err);
          process.exit(1);
        },
      );
  }
});
// The driver going away takes this process with it.
process.on('disconnect', () => process.exit(0));

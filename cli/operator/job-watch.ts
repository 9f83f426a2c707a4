// `loom jobs watch`: a live view of a job from its event stream. In a terminal a status block is
// redrawn in place under the lines of finished rounds; piped, every event is one plain line.
import type { JobStreamMessage, JobView, LoomClient, RoundRecord } from '../../shared/api-client/index.ts';
import { runOperator } from './command.ts';
import { duration, metrics, num, out, outJson, printable } from './format.ts';
import { plainScreen, type Screen, terminalScreen } from './live-screen.ts';
import { jobsWatchSpec } from './specs.ts';

/** What the display knows about the job, folded from its snapshot and events. */
interface WatchState {
  jobId: string;
  model: string;
  rounds: number;
  state: string;
  round?: {
    n: number;
    target: number;
    minClients: number;
    startedAt: number;
    sampled: Set<string>;
    reported: Set<string>;
    failed: Set<string>;
  };
  lastMetrics?: Record<string, number>;
  lastRound?: number;
  latestVersion?: number;
}

function bar(done: number, total: number, width = 20): string {
  const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : 0;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

function statusLines(s: WatchState): string[] {
  const head = `job ${s.jobId}  ${s.model}  ${s.state}`;
  if (!s.round) return [`${head}  round ${s.lastRound ?? 0}/${s.rounds}`];
  const r = s.round;
  const sampled = Math.max(r.sampled.size, r.target);
  return [
    `${head}  round ${r.n}/${s.rounds}  ${duration(Date.now() - r.startedAt)}`,
    `  ${bar(r.reported.size, sampled)}  sampled ${sampled}  reported ${r.reported.size}  failed ${r.failed.size}  (quorum ${r.minClients})`,
    ...(s.lastMetrics ? [`  round ${s.lastRound}: ${metrics(s.lastMetrics)}`] : []),
  ];
}

function fromSnapshot(job: JobView): WatchState {
  const last = job.rounds.at(-1);
  const p = job.roundInProgress;
  return {
    jobId: job.id,
    model: job.config.model,
    rounds: job.config.rounds,
    state: job.state,
    ...(last ? { lastMetrics: last.trainMetrics, lastRound: last.round } : {}),
    ...(job.latestVersion !== undefined ? { latestVersion: job.latestVersion } : {}),
    ...(p
      ? {
          round: {
            n: p.round,
            target: p.targetClients,
            minClients: p.minClients,
            startedAt: Date.parse(p.startedAt),
            sampled: new Set(p.sampled),
            reported: new Set(p.reported),
            failed: new Set(p.failures.map((f) => f.agentId)),
          },
        }
      : {}),
  };
}

/**
 * Follows job `id` until it finishes and resolves with the exit code: 0 when it completed, 1 when
 * it failed or was cancelled. `json` prints each message as one JSON line instead.
 */
export async function watchJob(
  api: LoomClient,
  id: string,
  options: { json?: boolean } = {},
): Promise<number> {
  const tty = !options.json && process.stdout.isTTY === true;
  const screen = tty ? terminalScreen(process.stdout) : plainScreen();
  let state: WatchState | undefined;
  const refresh = (): void => {
    if (state) screen.status(statusLines(state));
  };
  const ticker = tty ? setInterval(refresh, 1000) : undefined;
  ticker?.unref();
  let finalState = 'unknown';
  try {
    for await (const message of api.jobEvents(id)) {
      if (message.event !== 'snapshot' && message.data.type === 'job-finished')
        finalState = message.data.state;
      if (options.json) {
        outJson(message);
        continue;
      }
      const before = state;
      state = await apply(api, message, state, screen);
      if (before === undefined && state) {
        screen.line(`watching job ${state.jobId} (${state.model}, ${state.rounds} rounds, ${state.state})`);
      }
      refresh();
    }
  } finally {
    if (ticker) clearInterval(ticker);
    screen.close();
  }
  return finalState === 'completed' ? 0 : 1;
}

/** Attempts, 100 ms apart, to read a round's record: the round ends before its record is written. */
const RECORD_ATTEMPTS = 30;

async function roundRecord(api: LoomClient, jobId: string, round: number): Promise<RoundRecord | undefined> {
  for (let attempt = 0; attempt < RECORD_ATTEMPTS; attempt++) {
    const job = await api.getJob(jobId).catch(() => undefined);
    const record = job?.rounds.find((r) => r.round === round);
    if (record || !job || job.state !== 'running') return record;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

async function apply(
  api: LoomClient,
  message: JobStreamMessage,
  current: WatchState | undefined,
  screen: Screen | undefined,
): Promise<WatchState | undefined> {
  if (message.event === 'snapshot') return fromSnapshot(message.data);
  const s = current;
  if (!s) return s;
  const e = message.data;
  const say = (text: string): void => screen?.line(printable(text));
  // Each agent's step as a line of its own, where no status block shows it.
  const step = (text: string): void => {
    if (screen && !screen.live) say(text);
  };
  const label = (round: number): string => `round ${round}/${s.rounds}`;
  switch (e.type) {
    case 'job-started':
      s.state = 'running';
      break;
    case 'round-started':
      s.state = 'running';
      s.round = {
        n: e.round,
        target: e.targetClients,
        minClients: e.minClients,
        startedAt: Date.parse(e.at) || Date.now(),
        sampled: new Set(),
        reported: new Set(),
        failed: new Set(),
      };
      step(`${label(e.round)} started: asking ${e.targetClients} agent(s), quorum ${e.minClients}`);
      break;
    case 'task-sent':
      s.round?.sampled.add(e.agentId);
      break;
    case 'update-received':
      s.round?.reported.add(e.agentId);
      step(
        `${label(e.round)}: update from ${e.agentId} (${e.numExamples} examples), ` +
          `${s.round?.reported.size ?? 0}/${Math.max(s.round?.sampled.size ?? 0, s.round?.target ?? 0)} reported`,
      );
      break;
    case 'update-clipped':
      step(`${label(e.round)}: update of ${e.agentId} clipped to norm ${num(e.clipNorm)}`);
      break;
    case 'agent-failed':
      s.round?.failed.add(e.agentId);
      say(`${label(e.round)}: agent ${e.agentId} failed: ${e.reason} [${e.code}]`);
      break;
    case 'agent-excluded':
      say(`agent ${e.agentId} excluded from the job: ${e.reason} [${e.code}]`);
      break;
    case 'data-warning':
      say(`warning: ${e.agentId}: ${e.message}`);
      break;
    case 'round-ended': {
      // The event counts the outcome; the metrics and the version are in the round's record.
      const record = await roundRecord(api, s.jobId, e.round);
      if (record?.trainMetrics) s.lastMetrics = record.trainMetrics;
      if (record?.version !== undefined) s.latestVersion = record.version;
      s.lastRound = e.round;
      s.round = undefined;
      say(
        `${label(e.round)} ${e.state}: ${e.participants} reported, ${e.failures} failed` +
          `${record ? `, ${metrics(record.trainMetrics)}` : ''}` +
          `${record?.version !== undefined ? `, v${record.version}` : ''}` +
          `${record ? `, ${duration(record.durationMs)}` : ''}`,
      );
      break;
    }
    case 'job-finished':
      s.state = e.state;
      s.round = undefined;
      if (e.latestVersion !== undefined) s.latestVersion = e.latestVersion;
      say(
        `job ${s.jobId} ${e.state}` +
          (e.error ? `: ${e.error.message} [${e.error.code}]` : '') +
          (s.latestVersion !== undefined ? `; latest version v${s.latestVersion}` : ''),
      );
      break;
  }
  return s;
}

export function jobsWatch(argv: string[]): Promise<number> {
  return runOperator(jobsWatchSpec, argv, async ({ positionals, json, client }) =>
    watchJob(await client(), positionals[0], { json }),
  );
}

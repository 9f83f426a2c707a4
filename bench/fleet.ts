// `npm run bench -- fleet --agents N --rounds R`: a real coordinator in its own process and N
// emulated agents in a few others (fleet-agents.ts), each with its own key, a certificate from the
// real enrollment and its own mutual-TLS WebSocket speaking the real protocol. Reports the time to
// connect the fleet, each round split into dispatch, collection, aggregation and the store write,
// the coordinator's peak RSS and CPU (read from /proc), and every update lost or counted twice
// (fleet-check.ts). `--rounds 0` connects the fleet and holds it idle.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { certificateFingerprint } from '../certs/index.ts';
import { httpRequestRaw, requestJson } from '../shared/http/index.ts';
import { checkRound, type RoundCheck, type RoundRecordView } from './fleet-check.ts';
import { IDENTITY_CACHE_DIR, missingChunks } from './fleet-identities.ts';
import {
  type CoordinatorStats,
  type EmulatorReport,
  type FromCoordinator,
  type FromEmulator,
  nextMessage,
  nowMs,
  type RoundTiming,
  send,
  type ToCoordinator,
  type ToEmulator,
} from './fleet-ipc.ts';
import { type PhaseFigures, ProcSampler, readProc } from './fleet-proc.ts';

const USAGE = `usage: npm run bench -- fleet [--agents N] [--rounds R] [--params P] [--processes K] [--hold S]
                               [--train-ms T] [--round-timeout S] [--json] [--keep]
  --agents         emulated agents (default 100)
  --rounds         FedAvg rounds over all of them; 0 connects them and holds them idle (default 3)
  --params         parameters of the 784-h-10 MLP trained, h chosen to come nearest (default 12730, h = 16)
  --processes      emulator processes sharing the agents (default 2)
  --hold           seconds to hold the idle fleet with --rounds 0 (default 30: three heartbeats)
  --train-ms       simulated training time before each result (default 0)
  --round-timeout  round deadline in seconds (default 600)
  --json           one JSON line per round and a summary line
  --keep           keep the temp folder (coordinator data dir and log)
Agent keys are cached in ${IDENTITY_CACHE_DIR}; the first run at a new size makes them.`;

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(1);
}

function intFlag(flag: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) fail(`--${flag} must be an integer ≥ ${min}, got "${text}"`);
  return n;
}

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

function spawnChild(file: string): ChildProcess {
  return fork(here(file), [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what} after ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const ms = (x: number): string => `${Math.round(x)} ms`;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? 0;
const loadText = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** One round's milestones turned into the split the bench reports. */
interface RoundRow {
  round: number;
  state: string;
  agents: number;
  /** Round start → the coordinator has queued the last task on its socket. */
  sentMs: number;
  /** Round start → the last agent has its task. */
  dispatchMs: number;
  /** → the coordinator has the last update. */
  collectMs: number;
  /** → the average and the server step are done. */
  aggregateMs: number;
  /** → the version and the round record are committed. */
  writeMs: number;
  totalMs: number;
  /** The version written → the next round's start (data check, weights encoding). */
  gapMs?: number;
  check?: RoundCheck;
}

function rowsOf(timings: RoundTiming[], reports: EmulatorReport[]): RoundRow[] {
  return timings.map((t, k) => {
    const seen = reports.flatMap((r) => r.rounds.filter((x) => x.round === t.round));
    const lastTrain = Math.max(t.lastTaskSentAt, ...seen.map((x) => x.lastTrainAt));
    const written = t.writtenAt ?? t.endedAt;
    const next = timings[k + 1];
    return {
      round: t.round,
      state: t.state,
      agents: t.updates,
      sentMs: t.lastTaskSentAt - t.startedAt,
      dispatchMs: lastTrain - t.startedAt,
      collectMs: Math.max(0, t.lastUpdateAt - lastTrain),
      aggregateMs: t.endedAt - Math.max(t.lastUpdateAt, lastTrain),
      writeMs: written - t.endedAt,
      totalMs: written - t.startedAt,
      ...(next ? { gapMs: next.startedAt - written } : {}),
    };
  });
}

async function weightsOf(api: string, caPem: string, token: string, version: number): Promise<Float32Array> {
  const res = await httpRequestRaw(`${api}/v1/models/fleet/versions/${version}/artifact/weights.bin`, {
    ca: caPem,
    headers: { authorization: `Bearer ${token}` },
  });
  if (res.status !== 200) throw new Error(`weights of version ${version}: HTTP ${res.status}`);
  return new Float32Array(
    res.body.buffer.slice(res.body.byteOffset, res.body.byteOffset + res.body.byteLength),
  );
}

export async function run(argv: string[]): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        agents: { type: 'string' },
        rounds: { type: 'string' },
        params: { type: 'string' },
        processes: { type: 'string' },
        hold: { type: 'string' },
        'train-ms': { type: 'string' },
        'round-timeout': { type: 'string' },
        json: { type: 'boolean' },
        keep: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const agents = intFlag('agents', str('agents'), 100, 1);
  const rounds = intFlag('rounds', str('rounds'), 3, 0);
  const hidden = Math.max(1, Math.round((intFlag('params', str('params'), 12_730, 1) - 10) / 795));
  const params = 795 * hidden + 10;
  const processes = Math.min(agents, intFlag('processes', str('processes'), 2, 1));
  const holdSec = intFlag('hold', str('hold'), 30, 0);
  const trainMs = intFlag('train-ms', str('train-ms'), 0, 0);
  const roundTimeoutSec = intFlag('round-timeout', str('round-timeout'), 600, 1);
  const json = values.json === true;
  const say = (line: string): void => {
    if (!json) console.log(line);
  };

  const loadBefore = loadText();
  const dir = await mkdtemp(join(tmpdir(), 'loom-bench-fleet-'));
  const coord = spawnChild('./fleet-coordinator.ts');
  const emulators = Array.from({ length: processes }, () => spawnChild('./fleet-agents.ts'));
  const sampler = new ProcSampler(coord.pid!);
  const emulatorCpu = (): number => emulators.reduce((n, e) => n + (readProc(e.pid!)?.cpuSec ?? 0), 0);
  const toCoord = (m: ToCoordinator): void => send(coord, m);
  const toAll = (m: ToEmulator): void => {
    for (const e of emulators) send(e, m);
  };
  const fromCoord = <T extends FromCoordinator['type']>(type: T) =>
    nextMessage<FromCoordinator, T>(coord, type);
  const fromAll = <T extends FromEmulator['type']>(type: T) =>
    Promise.all(emulators.map((e) => nextMessage<FromEmulator, T>(e, type)));
  const stats = async (): Promise<CoordinatorStats> => {
    const reply = fromCoord('stats');
    toCoord({ type: 'stats' });
    return (await reply).stats;
  };
  let failed = false;
  try {
    say(
      `fleet: ${agents} agents in ${processes} emulator processes, ${rounds === 0 ? `idle for ${holdSec} s` : `${rounds} rounds of a 784-${hidden}-10 MLP (${params.toLocaleString('en-US')} parameters)`}; load average ${loadBefore}`,
    );
    sampler.mark('start');
    const ready = fromCoord('ready');
    toCoord({ type: 'start', dataDir: join(dir, 'coordinator'), logPath: join(dir, 'coordinator.log') });
    const { apiUrl, agentPort, adminToken, caFingerprint } = await ready;
    // Pinned as a site would: the CA fetched without verification must have the expected fingerprint.
    const { caCertificate: caPem } = await requestJson<{ caCertificate: string }>(`${apiUrl}/v1/ca`, {
      insecure: true,
    });
    if (certificateFingerprint(caPem) !== caFingerprint)
      throw new Error('the coordinator CA does not match its fingerprint');

    // Keys: made once, by the emulator processes in parallel, then read from the cache.
    sampler.mark('keys');
    const missing = await missingChunks(agents);
    const keysStarted = nowMs();
    if (missing.length > 0) {
      say(
        `identities: making ${missing.length} × 250 RSA-2048 keys and CSRs into ${IDENTITY_CACHE_DIR} (once)…`,
      );
      const done = fromAll('generated');
      for (const [w, e] of emulators.entries())
        send<ToEmulator>(e, { type: 'generate', chunks: missing.filter((_, i) => i % processes === w) });
      await done;
    }
    const keysMs = nowMs() - keysStarted;
    const per = Math.ceil(agents / processes);
    for (const [w, e] of emulators.entries())
      send<ToEmulator>(e, {
        type: 'setup',
        setup: {
          from: w * per,
          count: Math.max(0, Math.min(per, agents - w * per)),
          apiUrl,
          agentUrl: `wss://127.0.0.1:${agentPort}/v1/agent`,
          caPem,
          adminToken,
          trainMs,
          enrollConcurrency: 4,
          connectConcurrency: 256,
        },
      });

    sampler.mark('enroll');
    const enrolled = fromAll('enrolled');
    toAll({ type: 'enroll' });
    const enrollReplies = await enrolled;
    const enrollMs = Math.max(...enrollReplies.map((r) => r.ms));
    const indexOf = new Map<string, number>();
    for (const [w, r] of enrollReplies.entries())
      for (const [k, id] of r.agentIds.entries()) indexOf.set(id, w * per + k);
    say(
      `identities: ${agents} keys ${missing.length > 0 ? `(${missing.length * 250} made in ${round1(keysMs / 1000)} s)` : 'from the cache'}; enrolled through POST /v1/enroll in ${round1(enrollMs / 1000)} s (${Math.round(agents / (enrollMs / 1000))}/s)`,
    );

    sampler.mark('connect');
    const rssBeforeConnect = sampler.latest.rssMB;
    await stats();
    const online = fromCoord('online');
    toCoord({ type: 'await-online', count: agents });
    const connected = fromAll('connected');
    const connectStarted = nowMs();
    toAll({ type: 'connect' });
    const connectMs =
      (await withTimeout(online, 30 * 60_000, `${agents} agents to come online`)).at - connectStarted;
    const connectReplies = await connected;
    const connectStats = await stats();
    const p99 = Math.max(...connectReplies.map((r) => r.latency.p99));
    const connectFailures = connectReplies.reduce((n, r) => n + r.failed, 0);
    say(
      `connect: ${agents} agents online (mTLS + hello/welcome) in ${round1(connectMs / 1000)} s; per agent p50 ${ms(median(connectReplies.map((r) => r.latency.p50)))}, p99 ${ms(p99)}; ${connectFailures} failed attempts; coordinator event loop max delay ${ms(connectStats.loopDelay.maxMs)}`,
    );

    const timings: RoundTiming[] = [];
    let phaseStats: CoordinatorStats;
    let checks: RoundCheck[] = [];
    let rows: RoundRow[] = [];
    let deployMs: number | undefined;
    let jobView: { bytes: number; ms: number } | undefined;
    let reports: EmulatorReport[];
    const collect = async (): Promise<EmulatorReport[]> => {
      const replies = fromAll('report');
      toAll({ type: 'report' });
      return (await replies).map((r) => r.report);
    };
    if (rounds === 0) {
      sampler.mark('hold');
      await new Promise((r) => setTimeout(r, holdSec * 1000));
      phaseStats = await stats();
      reports = await collect();
    } else {
      sampler.mark('rounds');
      const call = <T>(path: string, body?: unknown): Promise<T> =>
        requestJson<T>(`${apiUrl}${path}`, {
          ca: caPem,
          headers: { authorization: `Bearer ${adminToken}` },
          ...(body === undefined ? {} : { body }),
        });
      // Nothing held out: emulators have no data to evaluate on, and the rounds are what is timed.
      await call('/v1/models', {
        name: 'fleet',
        architecture: { kind: 'mlp', inputShape: [784], layers: [hidden, 10], activation: 'relu' },
        holdoutFraction: 0,
      });
      coord.on('message', (m: FromCoordinator) => {
        if (m.type !== 'round') return;
        timings.push(m.timing);
        const t = m.timing;
        say(
          `  round ${t.round} ${t.state}: ${t.updates} updates, ${ms((t.writtenAt ?? t.endedAt) - t.startedAt)}`,
        );
      });
      const finished = fromCoord('job-finished');
      const job = await call<{ id: string }>('/v1/jobs', {
        model: 'fleet',
        rounds,
        clientsPerRound: agents,
        minClients: agents,
        roundTimeoutSec,
        epochs: 1,
        batchSize: 32,
        learningRate: 0.05,
      });
      const end = await finished;
      phaseStats = await stats();
      // A job deploys nothing itself: promoting its last version to production sends it to every
      // agent (no policy is set, so no gate).
      sampler.mark('deploy');
      if (end.state === 'completed') {
        const { latestVersion } = await call<{ latestVersion: number }>('/v1/models/fleet');
        await call(`/v1/models/fleet/versions/${latestVersion}/stage`, { stage: 'production' });
      }
      for (let waited = 0; ; waited += 250) {
        reports = await collect();
        const acked = reports.reduce((n, r) => n + r.deploys, 0);
        if (acked >= agents || waited > 60_000 || end.state !== 'completed') break;
        await new Promise((r) => setTimeout(r, 250));
      }
      if (end.state === 'completed') deployMs = Math.max(...reports.map((r) => r.lastDeployAt)) - end.at;
      // Read raw to report its size: the job view carries every participant of every round.
      const viewStarted = nowMs();
      const viewRes = await httpRequestRaw(`${apiUrl}/v1/jobs/${job.id}`, {
        ca: caPem,
        headers: { authorization: `Bearer ${adminToken}` },
      });
      jobView = { bytes: viewRes.body.length, ms: nowMs() - viewStarted };
      const view = JSON.parse(viewRes.body.toString('utf8')) as {
        rounds: RoundRecordView[];
        baseVersion: number;
      };
      rows = rowsOf(
        timings.sort((a, b) => a.round - b.round),
        reports,
      );
      let before = await weightsOf(apiUrl, caPem, adminToken, view.baseVersion);
      for (const record of view.rounds) {
        if (record.version === undefined) continue;
        const after = await weightsOf(apiUrl, caPem, adminToken, record.version);
        const sentBy = new Map<string, number>();
        for (const r of reports)
          for (const x of r.rounds.filter((y) => y.round === record.round))
            for (const [id, n] of Object.entries(x.results)) sentBy.set(id, (sentBy.get(id) ?? 0) + n);
        const check = checkRound(record, sentBy, indexOf, before, after);
        checks.push(check);
        const row = rows.find((r) => r.round === record.round);
        if (row) row.check = check;
        before = after;
      }
      if (end.state !== 'completed') {
        failed = true;
        say(`job ${end.state}: ${end.error ?? ''}`);
      }
    }
    sampler.stop();
    checks = checks.filter(Boolean);
    const lost = checks.reduce((n, c) => n + c.lost.length, 0);
    const duplicated = checks.reduce((n, c) => n + c.duplicated.length, 0);
    const badChecks = checks.filter((c) => !c.ok);
    if (badChecks.length > 0 || (rounds > 0 && checks.length !== rounds)) failed = true;
    const closes = reports.reduce((n, r) => n + Object.values(r.closes).reduce((a, b) => a + b, 0), 0);
    const phases: PhaseFigures[] = sampler.phases.filter((p) => p.phase !== 'start' && p.phase !== 'keys');
    const { hwmMB: peak, rssMB: rssEnd } = sampler.latest;
    const cpuTotal = phases.reduce((n, p) => n + p.cpuSec, 0);
    const wallTotal = phases.reduce((n, p) => n + p.wallSec, 0);
    const loadAfter = loadText();
    const summary = {
      bench: 'fleet',
      summary: true,
      agents,
      rounds,
      params,
      processes,
      keysMade: missing.length * 250,
      keysMs: Math.round(keysMs),
      enrollMs: Math.round(enrollMs),
      connectMs: Math.round(connectMs),
      connectP99Ms: Math.round(p99),
      connectFailures,
      peakRssMB: round1(peak),
      rssBeforeConnectMB: round1(rssBeforeConnect),
      rssEndMB: round1(rssEnd),
      perAgentKB: Math.round(((rssEnd - rssBeforeConnect) * 1024) / agents),
      phases: phases.map((p) => ({
        ...p,
        wallSec: round1(p.wallSec),
        cpuSec: round1(p.cpuSec),
        peakRssMB: round1(p.peakRssMB),
      })),
      cpuSec: round1(cpuTotal),
      cpuPctOfOneCore: Math.round((100 * cpuTotal) / wallTotal),
      emulatorCpuSec: round1(emulatorCpu()),
      loopDelayMaxMs: round1(Math.max(connectStats.loopDelay.maxMs, phaseStats.loopDelay.maxMs)),
      heapUsedMB: round1(phaseStats.heapUsedMB),
      sessions: phaseStats.sessions,
      disconnects: closes,
      offline: phaseStats.offline,
      coordinatorWarnings: phaseStats.warnings,
      emulatorErrors: Object.assign({}, ...reports.map((r) => r.errors)),
      lost,
      duplicated,
      roundsChecked: checks.length,
      roundsFailingCheck: badChecks.map((c) => c.round),
      ...(deployMs === undefined ? {} : { deployMs: Math.round(deployMs) }),
      ...(jobView ? { jobViewMB: round1(jobView.bytes / 1e6), jobViewMs: Math.round(jobView.ms) } : {}),
      medianRoundMs: rows.length ? Math.round(median(rows.map((r) => r.totalMs))) : undefined,
      loadBefore,
      loadAfter,
      ok: !failed,
    };
    if (json) {
      for (const r of rows) {
        const c = r.check;
        console.log(
          JSON.stringify({
            bench: 'fleet',
            round: r.round,
            state: r.state,
            agents: r.agents,
            sentMs: round1(r.sentMs),
            dispatchMs: round1(r.dispatchMs),
            collectMs: round1(r.collectMs),
            aggregateMs: round1(r.aggregateMs),
            writeMs: round1(r.writeMs),
            totalMs: round1(r.totalMs),
            ...(r.gapMs === undefined ? {} : { gapMs: round1(r.gapMs) }),
            failures: c?.failures,
            lost: c?.lost.length,
            duplicated: c?.duplicated.length,
            unknown: c?.unknown.length,
            misrecorded: c?.misrecorded.length,
            weightsMaxUlps: c?.maxUlps,
            weightsMaxErrorUpdates: c?.maxErrorUpdates,
            oneUpdateUlps: c?.oneUpdateUlps,
            ok: c?.ok ?? false,
          }),
        );
      }
      console.log(JSON.stringify(summary));
    } else {
      if (rows.length > 0) {
        say(
          'round   agents    queued  dispatch   collect  aggregate    write     total   next-gap  lost  dup  weights',
        );
        const cell = (x: number | undefined, w = 9): string => (x === undefined ? '' : ms(x)).padStart(w);
        for (const r of rows) {
          const c = r.check;
          const weights = !c
            ? 'unchecked'
            : c.maxUlps === 0
              ? 'exact'
              : c.maxUlps <= 1 && c.misfolded.length === 0
                ? 'within 1 ulp'
                : `off by ${c.maxErrorUpdates.toFixed(1)} updates`;
          say(
            `${String(r.round).padStart(5)}  ${String(r.agents).padStart(8)}${cell(r.sentMs, 10)}${cell(r.dispatchMs, 10)}${cell(r.collectMs, 10)}${cell(r.aggregateMs, 11)}${cell(r.writeMs, 9)}${cell(r.totalMs, 10)}${cell(r.gapMs, 11)}${String(c?.lost.length ?? '').padStart(6)}${String(c?.duplicated.length ?? '').padStart(5)}  ${weights}`,
          );
        }
        const col = (f: (r: RoundRow) => number): string => ms(median(rows.map(f)));
        say(
          `median: queued ${col((r) => r.sentMs)}, dispatch ${col((r) => r.dispatchMs)}, collect ${col((r) => r.collectMs)}, aggregate ${col((r) => r.aggregateMs)}, write ${col((r) => r.writeMs)}, round ${col((r) => r.totalMs)}`,
        );
        for (const c of badChecks)
          say(
            `round ${c.round} check failed: lost ${c.lost.length}, listed twice ${c.duplicated.length}, unknown ${c.unknown.length}, misrecorded ${c.misrecorded.length}, weights off by ${c.maxUlps.toFixed(1)} ulp (${c.maxErrorUpdates.toFixed(2)} updates)${c.misfolded.length ? `, folded a wrong number of times: ${c.misfolded.map((m) => `${m.agentId} ${m.times > 0 ? '+' : ''}${m.times}`).join(', ')}` : ''}`,
          );
        if (jobView)
          say(
            `job view: GET /v1/jobs/:id is ${round1(jobView.bytes / 1e6)} MB (every participant of every round), ${ms(jobView.ms)}`,
          );
        if (deployMs !== undefined)
          say(
            `deploy: the final version reached ${reports.reduce((n, r) => n + r.deploys, 0)} agents, ${ms(deployMs)} after the job finished`,
          );
      }
      say(
        `coordinator: peak RSS ${Math.round(peak)} MB (VmHWM), ${Math.round(rssEnd)} MB at the end${rounds === 0 ? ` = ${Math.round(rssBeforeConnect)} MB before connecting + ${summary.perAgentKB} KB per connected agent` : ''}; heap used ${Math.round(phaseStats.heapUsedMB)} MB; CPU ${round1(cpuTotal)} s over ${round1(wallTotal)} s (${summary.cpuPctOfOneCore}% of one core); event loop max delay ${ms(summary.loopDelayMaxMs)}`,
      );
      say(
        `  by phase: ${phases.map((p) => `${p.phase} ${round1(p.wallSec)} s, CPU ${round1(p.cpuSec)} s, peak RSS ${Math.round(p.peakRssMB)} MB`).join('; ')}`,
      );
      say(
        `fleet: ${phaseStats.sessions} of ${agents} agents online at the end; ${closes} disconnects, ${Object.keys(phaseStats.offline).length ? JSON.stringify(phaseStats.offline) : 'none seen by the coordinator'}; emulators used ${summary.emulatorCpuSec} s CPU`,
      );
      if (Object.keys(phaseStats.warnings).length)
        say(`coordinator warnings: ${JSON.stringify(phaseStats.warnings)}`);
      if (rounds > 0)
        say(
          `updates: ${lost} lost, ${duplicated} counted twice over ${checks.length} checked rounds${badChecks.length === 0 && checks.length === rounds ? '; every version written equals its parent plus the weighted mean of exactly its listed participants, to the bit' : ''}`,
        );
      say(`machine: load average ${loadBefore} before, ${loadAfter} after (2 cores shared)`);
      if (values.keep) say(`kept ${dir}`);
    }
  } catch (err) {
    failed = true;
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  } finally {
    sampler.stop();
    const exited = (child: ChildProcess): Promise<unknown> =>
      child.exitCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));
    const stopped = Promise.all([coord, ...emulators].map(exited));
    toAll({ type: 'stop' });
    toCoord({ type: 'stop' });
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 15_000).unref())]);
    for (const child of [coord, ...emulators]) if (child.exitCode === null) child.kill();
    if (!values.keep) await rm(dir, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
}

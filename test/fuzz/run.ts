// `npm run fuzz`: the long run of every fuzz target (100,000 cases each by default), with progress,
// a summary, and every failure saved as a regression case in test/fuzz/regressions/.
//
//   npm run fuzz -- [--target NAME|FAMILY]... [--runs N] [--seed S] [--path P] [--no-save] [--list]
//
// Exit status 0 when every target held, 1 when one failed, 2 on bad arguments.
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initCompute } from '../../shared/compute/index.ts';
import { loadRegressions, saveRegression } from './harness/regressions.ts';
import { describeFailure } from './harness/report.ts';
import { errorSummary, type RunResult, runCase, runGenerated } from './harness/runner.ts';
import { toJsonSafe } from './harness/serialize.ts';
import type { FuzzTarget } from './harness/target.ts';
import { liveTempDirs, removeTempDir } from './harness/temp-dirs.ts';
import { ALL_TARGETS } from './targets/index.ts';

/** Cases per target when --runs is not given. */
export const DEFAULT_RUNS = 100_000;

const USAGE = `usage: npm run fuzz -- [--target NAME|FAMILY]... [--runs N] [--seed S] [--path P] [--no-save] [--list]
  --target  a target name (protocol.decode-bytes) or family (protocol); repeatable; default all
  --runs    generated cases per target (default ${DEFAULT_RUNS})
  --seed    fast-check seed (default: a fresh one per target, printed)
  --path    replay one fast-check path (needs --seed and one --target)
  --no-save do not write failures to test/fuzz/regressions/
  --list    list the targets and exit`;

interface Summary {
  target: string;
  cases: number;
  runs: number;
  regressions: number;
  failed: boolean;
  ms: number;
  peakRssMb: number;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function selectTargets(names: readonly string[]): FuzzTarget[] {
  if (names.length === 0) return [...ALL_TARGETS];
  const picked = ALL_TARGETS.filter((t) => names.some((n) => t.name === n || t.name.startsWith(`${n}.`)));
  const unknown = names.filter((n) => !ALL_TARGETS.some((t) => t.name === n || t.name.startsWith(`${n}.`)));
  if (unknown.length > 0) fail(`unknown target ${unknown.join(', ')}; --list shows them`);
  return picked;
}

function wholeNumberFlag(raw: string | undefined, name: string, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) fail(`--${name} must be a whole number of at least ${min}`);
  return n;
}

const rssMb = (): number => Math.round(process.memoryUsage().rss / 2 ** 20);
const fmt = (n: number): string => n.toLocaleString('en-US');

async function runTarget(
  target: FuzzTarget,
  opts: { runs: number; seed?: number; path?: string; save: boolean },
): Promise<Summary> {
  const started = Date.now();
  let peak = rssMb();
  const log = (line: string): void => {
    peak = Math.max(peak, rssMb());
    process.stdout.write(`[${target.name}] ${line}\n`);
  };
  const current = join(tmpdir(), `loom-fuzz-current-${target.name}.json`);
  const ctx = await target.setup?.();
  let failed = false;
  let result: RunResult | undefined;
  const saved = loadRegressions(target.name);
  try {
    for (const r of saved) {
      try {
        await runCase(target, ctx, r.input);
      } catch (err) {
        failed = true;
        log(`regression case ${r.file} fails again:\n${errorSummary(err, 4)}`);
      }
    }
    const seed = opts.seed ?? (Date.now() ^ (Math.random() * 0x7fff_ffff)) | 0;
    log(
      `${saved.length} regression case(s) replayed; ${fmt(opts.runs)} cases, seed ${seed}${opts.path ? `, path ${opts.path}` : ''}`,
    );
    log(`the running case is kept in ${current}, for one that kills the process`);
    result = await runGenerated(target, ctx, {
      runs: opts.runs,
      seed,
      ...(opts.path === undefined ? {} : { path: opts.path }),
      progressEveryMs: 5000,
      onCase: (input) =>
        writeFileSync(current, JSON.stringify({ target: target.name, input: toJsonSafe(input) })),
      onProgress: (cases, shrinking) =>
        log(
          `${shrinking ? `shrinking a failure, ${fmt(cases)} cases in all` : `${fmt(cases)} / ${fmt(opts.runs)} cases`}, ` +
            `${((Date.now() - started) / 1000).toFixed(1)} s, rss ${rssMb()} MB`,
        ),
    });
    if (result.failure) {
      failed = true;
      log(describeFailure(result));
      if (opts.save) log(`saved ${saveRegression(result)}`);
    }
  } finally {
    await target.teardown?.(ctx);
  }
  rmSync(current, { force: true });
  const ms = Date.now() - started;
  log(`${failed ? 'FAILED' : 'ok'}: ${fmt(result?.cases ?? 0)} cases in ${(ms / 1000).toFixed(1)} s`);
  return {
    target: target.name,
    cases: result?.cases ?? 0,
    runs: result?.runs ?? 0,
    regressions: saved.length,
    failed,
    ms,
    peakRssMb: Math.max(peak, rssMb()),
  };
}

function printSummary(rows: readonly Summary[], totalMs: number): void {
  const header = ['target', 'cases', 'regressions', 'result', 'time', 'peak rss'];
  const table = rows.map((r) => [
    r.target,
    fmt(r.cases),
    String(r.regressions),
    r.failed ? 'FAILED' : 'ok',
    `${(r.ms / 1000).toFixed(1)} s`,
    `${r.peakRssMb} MB`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  process.stdout.write(`\n${line(header)}\n${table.map(line).join('\n')}\n`);
  const failures = rows.filter((r) => r.failed).length;
  const cases = rows.reduce((n, r) => n + r.cases, 0);
  process.stdout.write(
    `\n${rows.length} targets, ${fmt(cases)} cases, ${failures} failed, ${(totalMs / 1000).toFixed(1)} s\n`,
  );
}

const OPTIONS = {
  target: { type: 'string', multiple: true },
  runs: { type: 'string' },
  seed: { type: 'string' },
  path: { type: 'string' },
  'no-save': { type: 'boolean' },
  list: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

/** Ctrl-C or a kill between cases: remove the temp folders before going (a blocked loop cannot). */
function removeTempDirsOnSignal(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const dir of liveTempDirs()) removeTempDir(dir);
      process.stdout.write(
        `\n${signal}: stopped; temp folders removed, the running case stays in loom-fuzz-current-*.json\n`,
      );
      process.exit(130);
    });
  }
}

async function main(): Promise<void> {
  removeTempDirsOnSignal();
  let args: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>;
  try {
    args = parseArgs({ options: OPTIONS, allowPositionals: false });
  } catch (err) {
    fail((err as Error).message);
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (args.values.list) {
    for (const t of ALL_TARGETS) process.stdout.write(`${t.name.padEnd(26)} ${t.description}\n`);
    return;
  }
  const names = (args.values.target ?? []).flatMap((t) => t.split(',')).filter((t) => t !== '');
  const targets = selectTargets(names);
  const runs = wholeNumberFlag(args.values.runs, 'runs', 1) ?? DEFAULT_RUNS;
  const seed = wholeNumberFlag(args.values.seed, 'seed', -(2 ** 31));
  const path = args.values.path;
  if (path !== undefined && (seed === undefined || targets.length !== 1))
    fail('--path needs --seed and exactly one target');
  await initCompute();
  const started = Date.now();
  const rows: Summary[] = [];
  for (const target of targets) {
    rows.push(
      await runTarget(target, {
        runs,
        ...(seed === undefined ? {} : { seed }),
        ...(path === undefined ? {} : { path }),
        save: !args.values['no-save'],
      }),
    );
  }
  printSummary(rows, Date.now() - started);
  const left = liveTempDirs();
  if (left.length > 0) process.stdout.write(`temp folders left behind: ${left.join(', ')}\n`);
  process.exitCode = rows.some((r) => r.failed) || left.length > 0 ? 1 : 0;
}

await main();

// Runs a target: its saved regression cases, or `runs` generated cases under fast-check, each case
// within a time limit (a case that overruns is a hang), with progress and the counterexample.
import * as fc from 'fast-check';
import { CASE_MEMORY_LIMIT_MB, CASE_TIMEOUT_MS, type FuzzTarget } from './target.ts';

/** Options of `runGenerated`. */
export interface RunOptions {
  /** Generated cases. */
  runs: number;
  /** fast-check seed. Default: a fresh one, reported in the result. */
  seed?: number;
  /** fast-check path of a case to replay (with its `seed`). */
  path?: string;
  /**
   * Called at most every `progressEveryMs` with the cases run so far, and whether they are now
   * shrinking a failure (then `cases` counts the shrink attempts too).
   */
  onProgress?: (cases: number, shrinking: boolean) => void;
  /** Default 2000. */
  progressEveryMs?: number;
  /** Called with every input before it runs (the long run keeps the last one on disk, for a case that kills the process). */
  onCase?: (input: unknown) => void;
}

/** What a generated run found. */
export interface RunResult {
  target: string;
  /** Cases run before the first failure, or all of them. */
  runs: number;
  /** Cases run in all, shrinking included. */
  cases: number;
  seed: number;
  ms: number;
  failure?: {
    /** The smallest failing input fast-check found. */
    input: unknown;
    path: string;
    error: unknown;
    shrinks: number;
  };
}

/** Resident memory of the process in MiB. */
function rssMb(): number {
  return process.memoryUsage.rss() / 2 ** 20;
}

/** Milliseconds of CPU (user + system, all threads) the process used since `since`. */
function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

/**
 * Runs `target.check` once on `input`. A case fails when it uses more CPU than the target's time
 * limit (a loop; counted in CPU time, so a busy shared machine does not fail a case), when it is
 * still waiting after ten times that in wall time (a hang), or when the process grows past the
 * target's memory limit during it (async work is watched every 50 ms; a synchronous allocation is
 * caught when it returns).
 */
export async function runCase<I, C>(target: FuzzTarget<I, C>, ctx: C, input: I): Promise<void> {
  const limit = target.caseTimeoutMs ?? CASE_TIMEOUT_MS;
  const memoryLimit = target.caseMemoryLimitMb ?? CASE_MEMORY_LIMIT_MB;
  const cpuStart = process.cpuUsage();
  let timer: NodeJS.Timeout | undefined;
  let watch: NodeJS.Timeout | undefined;
  const tooBig = (): Error =>
    new Error(`the process grew to ${Math.round(rssMb())} MiB, past the ${memoryLimit} MiB limit`);
  const overrun = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`case did not finish within ${10 * limit} ms`)), 10 * limit);
    watch = setInterval(() => {
      if (rssMb() > memoryLimit) reject(tooBig());
    }, 50);
  });
  try {
    await Promise.race([Promise.resolve().then(() => target.check(input, ctx)), overrun]);
  } finally {
    clearTimeout(timer);
    clearInterval(watch);
  }
  const cpu = cpuMs(cpuStart);
  if (cpu > limit) throw new Error(`case used ${Math.round(cpu)} ms of CPU, more than the ${limit} ms limit`);
  if (rssMb() > memoryLimit) throw tooBig();
}

/** Runs `opts.runs` generated cases of `target` in `ctx`; shrinks the first failure. */
export async function runGenerated<I, C>(
  target: FuzzTarget<I, C>,
  ctx: C,
  opts: RunOptions,
): Promise<RunResult> {
  let cases = 0;
  let shrinking = false;
  let lastReport = Date.now();
  const every = opts.progressEveryMs ?? 2000;
  const property = fc.asyncProperty(target.input(), async (input) => {
    cases++;
    if (opts.onProgress && Date.now() - lastReport >= every) {
      lastReport = Date.now();
      opts.onProgress(cases, shrinking);
    }
    opts.onCase?.(input);
    try {
      await runCase(target, ctx, input);
    } catch (err) {
      // fast-check runs the failing case's smaller relatives from here on.
      shrinking = true;
      throw err;
    }
  });
  const started = Date.now();
  const details = await fc.check(property, {
    numRuns: opts.runs,
    ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    ...(opts.path === undefined ? {} : { path: opts.path }),
  });
  const result: RunResult = {
    target: target.name,
    runs: details.numRuns,
    cases,
    seed: details.seed,
    ms: Date.now() - started,
  };
  if (details.failed) {
    result.failure = {
      input: details.counterexample?.[0],
      path: details.counterexamplePath ?? '',
      error: details.errorInstance,
      shrinks: details.numShrinks,
    };
  }
  return result;
}

/** The first lines of an error, with its cause, for reports. */
export function errorSummary(err: unknown, lines = 3): string {
  if (!(err instanceof Error)) return String(err);
  const own = (err.stack ?? `${err.name}: ${err.message}`).split('\n').slice(0, lines).join('\n');
  return err.cause === undefined ? own : `${own}\ncaused by ${errorSummary(err.cause, lines)}`;
}

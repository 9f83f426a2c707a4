// Samples processes from /proc (Linux): resident memory (VmRSS, and the kernel's own peak VmHWM)
// and CPU time (utime + stime), so the fleet bench measures the coordinator from outside it,
// whatever its event loop is doing.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every mainstream Linux). */
const TICKS_PER_SECOND = 100;
const MB = 1024 * 1024;

export interface ProcSample {
  rssMB: number;
  hwmMB: number;
  cpuSec: number;
}

/** One reading of `pid`, or undefined once the process is gone. */
export function readProc(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), starting with field 3 (state).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return {
      rssMB: (kb('VmRSS') * 1024) / MB,
      hwmMB: (kb('VmHWM') * 1024) / MB,
      cpuSec: ticks / TICKS_PER_SECOND,
    };
  } catch {
    return undefined;
  }
}

/** What a process did during one phase of the bench. */
export interface PhaseFigures {
  phase: string;
  wallSec: number;
  cpuSec: number;
  /** Largest VmRSS sampled during the phase. */
  peakRssMB: number;
}

/**
 * Samples `pid` every `everyMs` (default 200 ms) and splits what it sees into phases; `mark`
 * ends the current phase and starts the next.
 */
export class ProcSampler {
  private readonly timer: NodeJS.Timeout;
  private phase?: { name: string; at: number; cpu: number; peak: number };
  private last: ProcSample = { rssMB: 0, hwmMB: 0, cpuSec: 0 };
  readonly phases: PhaseFigures[] = [];

  constructor(
    private readonly pid: number,
    everyMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  private sample(): ProcSample {
    const s = readProc(this.pid);
    if (s) this.last = s;
    if (this.phase) this.phase.peak = Math.max(this.phase.peak, this.last.rssMB);
    return this.last;
  }

  /** The latest reading (VmHWM is the process's peak since it started). */
  get latest(): ProcSample {
    return this.sample();
  }

  mark(next?: string): void {
    const s = this.sample();
    const now = performance.now();
    if (this.phase) {
      this.phases.push({
        phase: this.phase.name,
        wallSec: (now - this.phase.at) / 1000,
        cpuSec: s.cpuSec - this.phase.cpu,
        peakRssMB: this.phase.peak,
      });
    }
    this.phase = next === undefined ? undefined : { name: next, at: now, cpu: s.cpuSec, peak: s.rssMB };
  }

  stop(): void {
    this.mark();
    clearInterval(this.timer);
  }
}

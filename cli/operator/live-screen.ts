// A live progress display for commands that follow something as it runs (`jobs watch`, and next
// rollouts): a status block redrawn in place in a terminal, plain lines when piped.
import { out } from './format.ts';

/** Where the display goes: a terminal that can be redrawn, or a pipe that takes lines. */
export interface Screen {
  /** A terminal whose status block shows the progress: the lines of each agent's step are left out. */
  live: boolean;
  /** A line that stays (a finished round, a warning). */
  line(text: string): void;
  /** Redraws the live status, in a terminal only. */
  status(lines: string[]): void;
  close(): void;
}

/** A status block at the bottom of `stream`, erased and drawn again on each change; lines are clipped to its width. */
export function terminalScreen(stream: NodeJS.WriteStream): Screen {
  let drawn = 0;
  let last: string[] = [];
  const clip = (s: string): string => {
    const width = stream.columns || 100;
    return s.length >= width ? `${s.slice(0, width - 2)}…` : s;
  };
  const erase = (): void => {
    if (drawn > 0) stream.write(`\x1b[${drawn}A\r\x1b[J`);
    drawn = 0;
  };
  const draw = (): void => {
    for (const l of last) stream.write(`${clip(l)}\n`);
    drawn = last.length;
  };
  return {
    live: true,
    line(text) {
      erase();
      stream.write(`${text}\n`);
      draw();
    },
    status(lines) {
      erase();
      last = lines;
      draw();
    },
    close() {
      erase();
      last = [];
    },
  };
}

/** Plain lines on stdout, no status block: for pipes and files. */
export function plainScreen(): Screen {
  return { live: false, line: (text) => out(text), status: () => {}, close: () => {} };
}

// How operator commands print for people: aligned columns, readable numbers, names that cannot
// move the cursor, and two jobs side by side.
import { describe, expect, it } from 'vitest';
import { duration, fields, metrics, num, table } from '../../cli/operator/format.ts';
import { formatComparison } from '../../cli/operator/job-compare.ts';
import { terminalScreen } from '../../cli/operator/live-screen.ts';
import type { JobView } from '../../shared/api-client/index.ts';

describe('operator output', () => {
  it('aligns columns, numbers to the right, without trailing spaces', () => {
    const text = table(
      ['NAME', { title: 'PARAMS', align: 'right' }, 'NOTE'],
      [
        ['a', num(12_730), ''],
        ['longer', num(5), 'x'],
      ],
    );
    expect(text.split('\n')).toEqual(['NAME    PARAMS  NOTE', 'a       12,730', 'longer       5  x']);
  });

  it('writes numbers, durations and metrics readably', () => {
    expect([num(1234567), num(0.241712), num(1e-7), num(null), num(Number.NaN)]).toEqual([
      '1,234,567',
      '0.2417',
      '1.000e-7',
      '-',
      '-',
    ]);
    expect([
      duration(850),
      duration(18_840),
      duration(245_000),
      duration(7_380_000),
      duration(undefined),
    ]).toEqual(['850 ms', '18.8 s', '4 min 05 s', '2 h 03 min', '-']);
    expect(metrics({ zeta: 1, accuracy: 0.9493, loss: 0.2417 })).toBe('loss 0.2417  accuracy 0.9493  zeta 1');
  });

  it('shows control characters in names escaped, so a name cannot rewrite the terminal', () => {
    expect(table(['NAME'], [['evil\u001b[2J']])).toBe('NAME\nevil\\x1b[2J');
    expect(fields([['name', 'a\rb']])).toBe('name:  a\\x0db');
  });

  it('puts two jobs side by side, marking the settings that differ', () => {
    const job = (id: string, learningRate: number, losses: number[]): JobView =>
      ({
        id,
        config: { model: 'm', rounds: losses.length, learningRate, epochs: 1 },
        baseVersion: 1,
        state: 'completed',
        rounds: losses.map((loss, i) => ({
          round: i + 1,
          state: 'completed',
          trainMetrics: { loss },
          participants: [{}, {}],
          numExamples: 10,
          durationMs: 1000,
        })),
      }) as unknown as JobView;
    const text = formatComparison(job('A1', 0.1, [0.5, 0.25]), job('B2', 0.05, [0.75]));
    expect(text).toMatch(/^\* +learningRate +0\.1 +0\.05$/m);
    expect(text).toMatch(/^ +epochs +1 +1$/m);
    expect(text).toMatch(/^ +1 +0\.5 +0\.75 +\+0\.25 +2 +2 +1\.0 s +1\.0 s$/m);
    expect(text).toMatch(/^ +2 +0\.25 +- +- +2 +- +1\.0 s +-$/m);
  });

  it('redraws the status block of a terminal in place, under the lines that stay', () => {
    let written = '';
    const terminal = {
      columns: 20,
      write(chunk: string) {
        written += chunk;
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    const screen = terminalScreen(terminal);
    screen.status(['round 1/2', 'a status line far wider than the terminal']);
    screen.line('round 1/2 completed');
    screen.status(['round 2/2']);
    screen.close();
    expect(written).toBe(
      'round 1/2\na status line far …\n' +
        '\u001b[2A\r\u001b[Jround 1/2 completed\nround 1/2\na status line far …\n' +
        '\u001b[2A\r\u001b[Jround 2/2\n' +
        '\u001b[1A\r\u001b[J',
    );
  });
});

// The logger never passes control characters from its input through to a log line, and rounds
// numbers for people in text lines while JSON lines keep every digit.
import { describe, expect, it } from 'vitest';
import { createLogger, escapeControlChars, roundForText } from '../../shared/log/index.ts';

function capture(format: 'text' | 'json'): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger({ format, write: (l) => lines.push(l), level: 'debug' }) };
}

const HOSTILE = 'site\u001b[2J\u001b[31mred\nFAKE ERROR line\r\u0007\u007f\u009b2J\u202egnp.exe';

describe('the logger', () => {
  it('escapes C0, DEL, C1 and bidi control characters in text lines, in messages and values', () => {
    const { lines, log } = capture('text');
    log.info(`agent enrolled ${HOSTILE}`, { name: HOSTILE, plain: 'site-a', n: 3 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/[\p{Cc}\u202a-\u202e\u2066-\u2069]/u);
    expect(lines[0]).toContain('\\u001b[2J');
    expect(lines[0]).toContain('\\u009b');
    expect(lines[0]).toContain('\\u202e');
    expect(lines[0]).toContain('plain=site-a n=3');
  });

  it('writes JSON lines that parse back to the original text and hold no raw control characters', () => {
    const { lines, log } = capture('json');
    log.warn(HOSTILE, { name: HOSTILE });
    expect(lines[0]).not.toMatch(/[\p{Cc}\u202a-\u202e\u2066-\u2069]/u);
    const parsed = JSON.parse(lines[0]) as { msg: string; name: string };
    expect(parsed.msg).toBe(HOSTILE);
    expect(parsed.name).toBe(HOSTILE);
  });

  it('leaves ordinary text alone', () => {
    expect(escapeControlChars('round 3 of job-abc: 0.93 accuracy, é ü 漢字')).toBe(
      'round 3 of job-abc: 0.93 accuracy, é ü 漢字',
    );
  });
});

describe('numbers in log lines', () => {
  const metrics = {
    loss: 0.24171638488769531,
    accuracy: 0.9493333333333334,
    examples: 60_000,
    tiny: 1.234567e-7,
  };

  it('are rounded to 4 significant digits in text lines, integers untouched', () => {
    const { lines, log } = capture('text');
    log.info('update sent', metrics);
    expect(lines[0]).toContain('loss=0.2417 accuracy=0.9493 examples=60000 tiny=1.235e-7');
    expect(roundForText(1234.5678)).toBe('1235');
    expect(roundForText(-0.000123456)).toBe('-0.0001235');
    expect(roundForText(Number.NaN)).toBe('NaN');
  });

  it('keep full precision in JSON lines', () => {
    const { lines, log } = capture('json');
    log.info('update sent', metrics);
    expect(JSON.parse(lines[0])).toMatchObject(metrics);
  });
});

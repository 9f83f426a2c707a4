// Minimal structured logger: one line per event, human-readable text or JSON lines.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

export interface LoggerOptions {
  /** Lowest level written (default `info`, or env `LOOM_LOG_LEVEL`: debug, info, warn or error). */
  level?: LogLevel;
  /** `text` (default) or `json` lines. */
  format?: 'text' | 'json';
  /** Where lines go (default stderr). */
  write?: (line: string) => void;
  component?: string;
}

/**
 * Control characters (C0, DEL, C1) and the bidirectional overrides: any of them from a name or a
 * message an agent or a client chose could rewrite what a person reading the log sees.
 */
const UNSAFE_CHARS = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;

/** `text` with every unsafe character written as a `\uXXXX` escape, so a log line shows it, never obeys it. */
export function escapeControlChars(text: string): string {
  return text.replace(UNSAFE_CHARS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Significant digits of a non-integer number in a text log line; JSON lines keep every digit. */
export const TEXT_LOG_SIGNIFICANT_DIGITS = 4;

/**
 * A number as a person reads it in a text line: integers as they are, others to 4 significant
 * digits (0.2417, 1235, 1.5e-7), so a loss of 0.24171638488769531 does not drown the line.
 */
export function roundForText(n: number): string {
  if (!Number.isFinite(n) || Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(TEXT_LOG_SIGNIFICANT_DIGITS)));
}

function formatValue(v: unknown): string {
  if (typeof v === 'number') return roundForText(v);
  if (typeof v === 'string') return escapeControlChars(/\s|"/.test(v) ? JSON.stringify(v) : v);
  if (v instanceof Error) return escapeControlChars(JSON.stringify(v.message));
  return escapeControlChars(JSON.stringify(v) ?? String(v));
}

/**
 * Creates a logger; `silent` drops everything (tests). Text lines round non-integer numbers
 * (`roundForText`); JSON lines keep full precision for machines.
 * @param options.level default `LOOM_LOG_LEVEL` or `info`
 * @param options.format default `text`
 * @param options.write default: a line on stderr
 */
export function createLogger(options: LoggerOptions | 'silent' = {}): Logger {
  if (options === 'silent') {
    const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
    return silent;
  }
  const envLevel = process.env.LOOM_LOG_LEVEL as LogLevel | undefined;
  const min = LEVELS[options.level ?? (envLevel && envLevel in LEVELS ? envLevel : 'info')];
  const format = options.format ?? 'text';
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const make = (component: string | undefined): Logger => {
    const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
      if (LEVELS[level] < min) return;
      const time = new Date().toISOString();
      if (format === 'json') {
        // JSON.stringify escapes C0 characters but not DEL, C1 or bidi overrides.
        write(
          escapeControlChars(
            JSON.stringify({ time, level, ...(component ? { component } : {}), msg, ...fields }),
          ),
        );
        return;
      }
      const extra = fields
        ? Object.entries(fields)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${k}=${formatValue(v)}`)
            .join(' ')
        : '';
      write(
        `${time} ${level.toUpperCase().padEnd(5)} ${component ? `[${component}] ` : ''}${escapeControlChars(msg)}${extra ? ` ${extra}` : ''}`,
      );
    };
    return {
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      child: (c) => make(component ? `${component}/${c}` : c),
    };
  };
  return make(options.component);
}

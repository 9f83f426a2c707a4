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
  /** Lowest level written (default `info`, or env `LOOM_LOG_LEVEL`). */
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

function formatValue(v: unknown): string {
  if (typeof v === 'string') return escapeControlChars(/\s|"/.test(v) ? JSON.stringify(v) : v);
  if (v instanceof Error) return escapeControlChars(JSON.stringify(v.message));
  return escapeControlChars(JSON.stringify(v) ?? String(v));
}

/** Creates a logger; `silent` drops everything (tests). */
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

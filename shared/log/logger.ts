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

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /\s|"/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v);
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
        write(JSON.stringify({ time, level, ...(component ? { component } : {}), msg, ...fields }));
        return;
      }
      const extra = fields
        ? Object.entries(fields)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${k}=${formatValue(v)}`)
            .join(' ')
        : '';
      write(
        `${time} ${level.toUpperCase().padEnd(5)} ${component ? `[${component}] ` : ''}${msg}${extra ? ` ${extra}` : ''}`,
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

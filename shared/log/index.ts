// Public door of shared/log.

export type { Logger, LoggerOptions, LogLevel } from './logger.ts';
export { createLogger, escapeControlChars, roundForText } from './logger.ts';

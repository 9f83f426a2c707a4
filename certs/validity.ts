// Validity windows for issued certificates: option checks, clock-skew back-dating, whole-second rounding.

/** How far certificates are back-dated so peers with slightly slow clocks accept them at once. */
export const CLOCK_SKEW_SECONDS = 60;

/** Throws a TypeError unless `value` is a positive finite number; `what` names the option. */
export function assertPositive(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${what} must be a positive finite number`);
  }
}

/**
 * The window [notBefore, notBefore + seconds], both rounded down to whole seconds because X.509 times
 * carry no milliseconds; returning the rounded values lets callers report exactly what the cert says.
 * @param notBefore start of validity; defaults to now minus CLOCK_SKEW_SECONDS.
 */
export function validityWindow(seconds: number, notBefore?: Date): { notBefore: Date; notAfter: Date } {
  if (notBefore !== undefined && (!(notBefore instanceof Date) || Number.isNaN(notBefore.getTime()))) {
    throw new TypeError('notBefore must be a valid Date');
  }
  const startMs = notBefore ? notBefore.getTime() : Date.now() - CLOCK_SKEW_SECONDS * 1000;
  const start = Math.floor(startMs / 1000) * 1000;
  const end = start + Math.floor(seconds) * 1000;
  if (end <= start) throw new TypeError('validity must be at least one second');
  return { notBefore: new Date(start), notAfter: new Date(end) };
}

// Reconnect delays: exponential with full jitter, so many agents restarting together spread out.

export interface BackoffOptions {
  /** First delay ceiling (default 500 ms). */
  initialMs?: number;
  /** Largest delay ceiling (default 30 000 ms). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
}

export const BACKOFF_DEFAULTS = { initialMs: 500, maxMs: 30_000, factor: 2 } as const;

/** Delay before reconnect attempt `attempt` (0-based): uniform in [0, min(max, initial·factor^attempt)]. */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random = Math.random): number {
  const { initialMs, maxMs, factor } = { ...BACKOFF_DEFAULTS, ...options };
  const ceiling = Math.min(maxMs, initialMs * factor ** Math.min(attempt, 50));
  return Math.round(random() * ceiling);
}

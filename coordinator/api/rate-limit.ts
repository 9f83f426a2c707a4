// A small in-memory, per-address rate limiter for the unauthenticated routes (POST /v1/enroll),
// so one client cannot keep the coordinator busy checking tokens and CSRs.
import { createMiddleware } from 'hono/factory';
import { LoomError } from '../../shared/errors/index.ts';
import { type ApiEnv, remoteAddress } from './context.ts';

export interface RateLimitOptions {
  /** Most requests one address may make per window. Default 20. */
  max?: number;
  /** Window length in milliseconds. Default 60000 (one minute). */
  windowMs?: number;
  /** Most addresses remembered at once; beyond it the least recently started window is forgotten. Default 10000. */
  maxAddresses?: number;
}

/** Defaults of `RateLimitOptions`: 20 requests per address per minute, 10,000 addresses tracked. */
export const RATE_LIMIT_DEFAULTS = { max: 20, windowMs: 60_000, maxAddresses: 10_000 } as const;

/** What `take` answers: allowed, or refused with the seconds until the address's window resets. */
export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterSec: number };

/**
 * Fixed-window counter per key. Memory is bounded by `maxAddresses`, so a flood of distinct
 * addresses evicts old windows instead of growing the map.
 */
export class FixedWindowRateLimiter {
  private readonly max: number;
  private readonly windowMs: number;
  private readonly maxAddresses: number;
  // Insertion order is window start order, because a key is re-inserted when its window restarts.
  private readonly windows = new Map<string, { start: number; count: number }>();

  /** @param opts see `RateLimitOptions` for the defaults */
  constructor(opts: RateLimitOptions = {}) {
    this.max = opts.max ?? RATE_LIMIT_DEFAULTS.max;
    this.windowMs = opts.windowMs ?? RATE_LIMIT_DEFAULTS.windowMs;
    this.maxAddresses = opts.maxAddresses ?? RATE_LIMIT_DEFAULTS.maxAddresses;
    for (const [name, value] of Object.entries({
      max: this.max,
      windowMs: this.windowMs,
      maxAddresses: this.maxAddresses,
    })) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw new TypeError(`${name} must be a positive integer`);
    }
  }

  /** Counts one request for `key` at `now` (default the current time) and says whether it may go on. */
  take(key: string, now: number = Date.now()): RateLimitDecision {
    let window = this.windows.get(key);
    if (window === undefined || now - window.start >= this.windowMs) {
      this.windows.delete(key);
      window = { start: now, count: 0 };
      this.windows.set(key, window);
      this.evict();
    }
    window.count += 1;
    if (window.count <= this.max) return { allowed: true };
    return {
      allowed: false,
      retryAfterSec: Math.max(1, Math.ceil((window.start + this.windowMs - now) / 1000)),
    };
  }

  /** Number of addresses remembered (for tests and diagnostics). */
  get size(): number {
    return this.windows.size;
  }

  /** Forgets the windows that started first (expired ones, when there are any) beyond `maxAddresses`. */
  private evict(): void {
    for (const key of this.windows.keys()) {
      if (this.windows.size <= this.maxAddresses) return;
      this.windows.delete(key);
    }
  }
}

/**
 * Refuses a request with 429 LOOM_ERR_RATE_LIMITED (and a Retry-After header) once its remote
 * address is over `limiter`'s budget. Requests without a known address share one budget.
 */
export function rateLimit(limiter: FixedWindowRateLimiter) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    const address = remoteAddress(c) ?? 'unknown';
    const decision = limiter.take(address);
    if (!decision.allowed) {
      c.header('retry-after', String(decision.retryAfterSec));
      throw new LoomError(
        'LOOM_ERR_RATE_LIMITED',
        `too many requests from ${address}; retry in ${decision.retryAfterSec} s`,
        { details: { retryAfterSec: decision.retryAfterSec } },
      );
    }
    await next();
  });
}

// The one error class for bad input from the network, files or users.
import type { LoomErrorCode } from './codes.ts';

/** HTTP status used when a code reaches the operator or inference API. */
const HTTP_STATUS: Partial<Record<LoomErrorCode, number>> = {
  LOOM_ERR_INVALID_ARGUMENT: 400,
  LOOM_ERR_INVALID_CONFIG: 400,
  LOOM_ERR_MODEL_SPEC: 400,
  LOOM_ERR_INFERENCE_INPUT: 400,
  LOOM_ERR_CSR_INVALID: 400,
  LOOM_ERR_TENSOR: 400,
  LOOM_ERR_DATA: 400,
  LOOM_ERR_TOKEN_INVALID: 401,
  LOOM_ERR_UNAUTHORIZED: 401,
  LOOM_ERR_FORBIDDEN: 403,
  LOOM_ERR_CERT_REVOKED: 403,
  LOOM_ERR_NOT_FOUND: 404,
  LOOM_ERR_CONFLICT: 409,
  LOOM_ERR_ROLLOUT_ACTIVE: 409,
  LOOM_ERR_ROLLOUT_STATE: 409,
  LOOM_ERR_NO_TARGETS: 409,
  LOOM_ERR_VERSION_RETIRED: 410,
  LOOM_ERR_GATE: 409,
  LOOM_ERR_FRAME_TOO_LARGE: 413,
  LOOM_ERR_RATE_LIMITED: 429,
  LOOM_ERR_MODEL_UNAVAILABLE: 503,
};

export interface LoomErrorOptions {
  cause?: unknown;
  /** Structured details safe to show to the caller (e.g. the offending field). */
  details?: Record<string, unknown>;
}

/** A failure with a stable `code`; callers branch on `code`, never on `message`. */
export class LoomError extends Error {
  override name = 'LoomError';
  readonly code: LoomErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: LoomErrorCode, message: string, options: LoomErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.details) this.details = options.details;
  }

  /** The HTTP status this error maps to (500 for codes without a client-facing status). */
  get httpStatus(): number {
    return HTTP_STATUS[this.code] ?? 500;
  }

  toJSON(): { code: LoomErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** True when `err` is a LoomError, optionally with the given code. */
export function isLoomError(err: unknown, code?: LoomErrorCode): err is LoomError {
  return err instanceof LoomError && (code === undefined || err.code === code);
}

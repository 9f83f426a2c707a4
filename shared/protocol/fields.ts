// Field readers for untrusted decoded objects: each returns the typed value or throws a
// LoomError naming the field. Used by the protocol codec and the HTTP API.
import { LoomError, type LoomErrorCode } from '../errors/index.ts';

export class FieldReader {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly path: string,
    private readonly code: LoomErrorCode = 'LOOM_ERR_PROTOCOL',
  ) {}

  /** Wraps `value` if it is a plain object; throws otherwise. */
  static of(value: unknown, path: string, code: LoomErrorCode = 'LOOM_ERR_PROTOCOL'): FieldReader {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
      throw new LoomError(code, `${path || 'body'} must be an object`, {
        details: { field: path || 'body' },
      });
    }
    return new FieldReader(value as Record<string, unknown>, path, code);
  }

  private name(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  fail(key: string, message: string): never {
    const field = this.name(key);
    throw new LoomError(this.code, `${field} ${message}`, { details: { field } });
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  /** Keys present that are not in `allowed` are refused (catches typos in API bodies). */
  onlyKeys(allowed: readonly string[]): this {
    for (const key of Object.keys(this.obj)) {
      if (!allowed.includes(key))
        this.fail(key, `is not a known field (expected one of: ${allowed.join(', ')})`);
    }
    return this;
  }

  string(key: string, opts: { max?: number; pattern?: RegExp; min?: number } = {}): string {
    const v = this.obj[key];
    if (typeof v !== 'string') this.fail(key, 'must be a string');
    if (v.length < (opts.min ?? 1)) this.fail(key, 'must not be empty');
    if (v.length > (opts.max ?? 1024)) this.fail(key, `must be at most ${opts.max ?? 1024} characters`);
    if (opts.pattern && !opts.pattern.test(v)) this.fail(key, `must match ${opts.pattern}`);
    return v;
  }

  optionalString(key: string, opts: { max?: number; pattern?: RegExp } = {}): string | undefined {
    return this.has(key) ? this.string(key, opts) : undefined;
  }

  number(
    key: string,
    opts: { min?: number; max?: number; integer?: boolean; exclusiveMin?: boolean } = {},
  ): number {
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'must be a finite number');
    if (opts.integer && !Number.isSafeInteger(v)) this.fail(key, 'must be an integer');
    if (opts.min !== undefined && (opts.exclusiveMin ? v <= opts.min : v < opts.min)) {
      this.fail(key, `must be ${opts.exclusiveMin ? 'greater than' : 'at least'} ${opts.min}`);
    }
    if (opts.max !== undefined && v > opts.max) this.fail(key, `must be at most ${opts.max}`);
    return v;
  }

  optionalNumber(
    key: string,
    opts: { min?: number; max?: number; integer?: boolean; exclusiveMin?: boolean } = {},
  ): number | undefined {
    return this.has(key) ? this.number(key, opts) : undefined;
  }

  integer(key: string, opts: { min?: number; max?: number } = {}): number {
    return this.number(key, { ...opts, integer: true });
  }

  boolean(key: string): boolean {
    const v = this.obj[key];
    if (typeof v !== 'boolean') this.fail(key, 'must be true or false');
    return v;
  }

  bytes(key: string): Uint8Array {
    const v = this.obj[key];
    if (!(v instanceof Uint8Array)) this.fail(key, 'must be binary');
    return v;
  }

  object(key: string): FieldReader {
    return FieldReader.of(this.obj[key], this.name(key), this.code);
  }

  array(key: string, opts: { max?: number } = {}): unknown[] {
    const v = this.obj[key];
    if (!Array.isArray(v)) this.fail(key, 'must be an array');
    if (opts.max !== undefined && v.length > opts.max) this.fail(key, `must have at most ${opts.max} items`);
    return v;
  }

  /** An array of finite numbers (integers ≥ `min` when `integer`), at most `max` long. */
  numberArray(key: string, opts: { max?: number; min?: number; integer?: boolean } = {}): number[] {
    const arr = this.array(key, opts);
    for (const v of arr) {
      const ok =
        typeof v === 'number' &&
        Number.isFinite(v) &&
        (!opts.integer || Number.isSafeInteger(v)) &&
        (opts.min === undefined || v >= opts.min);
      if (!ok) {
        this.fail(
          key,
          `must hold ${opts.integer ? 'integers' : 'finite numbers'}${opts.min === undefined ? '' : ` of at least ${opts.min}`}`,
        );
      }
    }
    return arr as number[];
  }

  optionalBoolean(key: string): boolean | undefined {
    return this.has(key) ? this.boolean(key) : undefined;
  }

  stringArray(key: string, opts: { max?: number } = {}): string[] {
    const arr = this.array(key, opts);
    if (!arr.every((s) => typeof s === 'string')) this.fail(key, 'must be an array of strings');
    return arr as string[];
  }

  /** A flat record of finite numbers, with at most `maxKeys` keys of at most 64 characters. */
  numberRecord(key: string, opts: { maxKeys?: number } = {}): Record<string, number> {
    const r = this.object(key);
    const keys = Object.keys(r.obj);
    const maxKeys = opts.maxKeys ?? 64;
    if (keys.length > maxKeys) this.fail(key, `must have at most ${maxKeys} entries`);
    const out: Record<string, number> = {};
    for (const k of keys) {
      if (k.length > 64) this.fail(key, 'keys must be at most 64 characters');
      out[k] = r.number(k);
    }
    return out;
  }
}

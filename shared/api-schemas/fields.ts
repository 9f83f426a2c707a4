// Building blocks of the API schemas, worded like the protocol's field reader so that every
// refusal reads "<field> <what is wrong>", and the one translation of a failed parse into a
// LoomError naming the field.
import { z } from 'zod';
import { LoomError, type LoomErrorCode } from '../errors/index.ts';

/** A string of `min` (default 1) to `max` (default 1024) characters, matching `pattern` if given. */
export function text(opts: { min?: number; max?: number; pattern?: RegExp } = {}) {
  const min = opts.min ?? 1;
  const max = opts.max ?? 1024;
  let s = z
    .string({ error: 'must be a string' })
    .min(min, min === 1 ? 'must not be empty' : `must be at least ${min} characters`)
    .max(max, `must be at most ${max} characters`);
  if (opts.pattern) s = s.regex(opts.pattern, `must match ${opts.pattern}`);
  return s;
}

/** A finite number within the bounds; `exclusiveMin` makes `min` itself refused. */
export function finite(opts: { min?: number; max?: number; exclusiveMin?: boolean } = {}) {
  let n = z.number({ error: 'must be a finite number' });
  if (opts.min !== undefined) {
    n = opts.exclusiveMin
      ? n.gt(opts.min, `must be greater than ${opts.min}`)
      : n.gte(opts.min, `must be at least ${opts.min}`);
  }
  if (opts.max !== undefined) n = n.lte(opts.max, `must be at most ${opts.max}`);
  return n;
}

/** A safe integer within the bounds. */
export function integer(opts: { min?: number; max?: number } = {}) {
  let n = z.int({
    error: (issue) =>
      typeof issue.input === 'number' && Number.isFinite(issue.input)
        ? 'must be an integer'
        : 'must be a finite number',
  });
  if (opts.min !== undefined) n = n.min(opts.min, `must be at least ${opts.min}`);
  if (opts.max !== undefined) n = n.max(opts.max, `must be at most ${opts.max}`);
  return n;
}

/** true or false. */
export function bool() {
  return z.boolean({ error: 'must be true or false' });
}

/** One of `values`, refused as "must be one of a, b, c". */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T, message?: string) {
  return z.enum(values, {
    error: (issue) =>
      typeof issue.input === 'string'
        ? (message ?? `must be one of ${values.join(', ')}`)
        : 'must be a string',
  });
}

/**
 * A JSON object with exactly these fields: any other key is refused as "<key> is not a known
 * field (expected one of: …)", before anything else is checked.
 */
export function strictBody<S extends z.core.$ZodLooseShape>(shape: S) {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `is not a known field (expected one of: ${known})`
        : issue.code === 'invalid_type'
          ? 'must be an object'
          : undefined,
  });
}

/** The field a zod issue is about, dotted (`target.labels.site`); `body` for the whole body. */
function issueField(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[]): string {
  const path = [...prefix, ...issue.path, ...(issue.code === 'unrecognized_keys' ? [issue.keys[0]] : [])];
  // Keys come from the caller: cut long ones and blank control characters, which would otherwise
  // reach terminals and logs through the message.
  return path.length === 0
    ? 'body'
    : path
        .map((p) =>
          String(p)
            .replace(/\p{Cc}/gu, '?')
            .slice(0, 80),
        )
        .join('.');
}

/**
 * A failed parse as the LoomError the API answers with: the first unknown key if there is one
 * (a typo is the likeliest mistake), else the first issue; "<field> <what is wrong>" with the
 * field in `details.field`. An issue raised with `params.code` keeps that code and its message as
 * it is (a domain check, such as an architecture's, that words its own errors).
 */
export function schemaError(
  error: z.ZodError,
  code: LoomErrorCode = 'LOOM_ERR_INVALID_ARGUMENT',
  prefix: readonly PropertyKey[] = [],
): LoomError {
  const issue = error.issues.find((i) => i.code === 'unrecognized_keys') ?? error.issues[0];
  const field = issueField(issue, prefix);
  const params = issue.code === 'custom' ? (issue.params as { code?: LoomErrorCode } | undefined) : undefined;
  if (params?.code) return new LoomError(params.code, issue.message, { details: { field } });
  const message = field === 'body' ? `body ${issue.message}` : `${field} ${issue.message}`;
  return new LoomError(code, message, { details: { field } });
}

/**
 * `value` checked by `schema`, or the LoomError of its first issue (see `schemaError`); `prefix`
 * is where the value sits in a larger body, for the field names.
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  code: LoomErrorCode = 'LOOM_ERR_INVALID_ARGUMENT',
  prefix: readonly PropertyKey[] = [],
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw schemaError(result.error, code, prefix);
  return result.data;
}

/**
 * A check written as code (a domain parser that throws LoomError) inside a schema: its error
 * becomes an issue that keeps the parser's code and message; its result is the parsed value.
 */
export function checkedBy<T, I = unknown>(
  parse: (value: unknown) => T,
  meta: Record<string, unknown>,
): z.ZodType<T, I> {
  return z
    .unknown()
    .transform((value, ctx) => {
      try {
        return parse(value);
      } catch (err) {
        const e = err as { code?: string; message?: string };
        if (typeof e?.code !== 'string' || !e.code.startsWith('LOOM_ERR_')) throw err;
        ctx.addIssue({ code: 'custom', message: e.message ?? 'is not valid', params: { code: e.code } });
        return z.NEVER;
      }
    })
    .meta(meta) as unknown as z.ZodType<T, I>;
}

/** A JSON object without its null fields: in an API body, null means "not given". */
export function withoutNulls(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}

/** An API body checked by `schema`, its null fields taken as not given (see `parseWith`). */
export function parseBody<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  return parseWith(schema, withoutNulls(value));
}

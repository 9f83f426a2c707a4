// Schemas every route shares: the error answer, path parameters, the paging query of list
// routes, and small records (labels, error pairs) that appear in many answers.
import { z } from 'zod';
import { LoomError } from '../errors/index.ts';

/** Every failure: a stable code (`LOOM_ERR_...`) and a message naming the field at fault. */
export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'Stable error code (LOOM_ERR_...); branch on this.' }),
      message: z.string().meta({ description: 'What is wrong, naming the field; wording may change.' }),
    }),
  })
  .meta({ id: 'Error' });

/** `{code, message}` as records keep them (a failed job, round, evaluation). */
export const ErrorPair = z.object({ code: z.string(), message: z.string() });

/** Defaults of every list route: `limit` 100, at most 1000. */
export const LIST_DEFAULTS = { limit: 100, maxLimit: 1000 } as const;

/** A filter a list route accepts: free text, a boolean, or one of some values. */
export type FilterSpec = 'string' | 'boolean' | readonly string[];

/**
 * The query of a list route: `limit`, the cursor `after` (unless `cursor: false`) and its filters.
 * Query values are strings on the wire; the route's reader checks them (unknown or repeated
 * parameters are refused) — this schema is what the document shows of them.
 */
export function listQuery(filters: Record<string, FilterSpec>, options: { cursor?: boolean } = {}) {
  const shape: Record<string, z.ZodType> = {
    limit: z
      .string()
      .regex(/^\d{1,7}$/)
      .optional()
      .meta({
        description: `Items per page: 1 to ${LIST_DEFAULTS.maxLimit} (default ${LIST_DEFAULTS.limit}).`,
      }),
  };
  if (options.cursor !== false) {
    shape.after = z
      .string()
      .min(1)
      .max(256)
      .optional()
      .meta({ description: 'The `next` cursor of the previous page.' });
  }
  for (const [name, spec] of Object.entries(filters)) {
    shape[name] = (
      spec === 'boolean'
        ? z.enum(['true', 'false'])
        : Array.isArray(spec)
          ? z.enum(spec as [string, ...string[]])
          : z.string().min(1).max(256)
    ).optional();
  }
  return z.strictObject(shape);
}

/** `:name`: a model name. */
export const ModelParams = z.object({ name: z.string().meta({ description: 'Model name.' }) });

/** `:id` of an agent, job, token, rollout. */
export const IdParams = z.object({ id: z.string().meta({ description: 'Identifier.' }) });

/** A `:version` path segment that must be a positive integer. */
export const versionNumber = z
  .string()
  .transform((raw, ctx) => {
    const n = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
    if (Number.isSafeInteger(n) && n >= 1) return n;
    ctx.addIssue({
      code: 'custom',
      message: `version "${raw.slice(0, 40)}" is not a positive integer`,
      params: { code: 'LOOM_ERR_INVALID_ARGUMENT' },
    });
    return z.NEVER;
  })
  .meta({ description: 'Version number (1, 2, ...).', pattern: '^[1-9][0-9]*$' });

/** `:name/versions/:version` with a version number. */
export const VersionParams = z.object({ name: ModelParams.shape.name, version: versionNumber });

/** `:name/versions/:version` where the version may be an alias (`champion`). */
export const VersionRefParams = z.object({
  name: ModelParams.shape.name,
  version: z.string().meta({ description: 'Version number or an alias of the model (champion, ...).' }),
});

/** The version of `raw` as a `:version` path segment, or LOOM_ERR_INVALID_ARGUMENT naming it. */
export function versionOf(raw: string): number {
  const result = versionNumber.safeParse(raw);
  if (!result.success) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', result.error.issues[0].message, {
      details: { field: 'version' },
    });
  }
  return result.data;
}

/** Agent labels as answers show them. */
export const LabelMap = z.record(z.string(), z.string()).meta({
  description: 'Labels: key to value.',
});

/** A page cursor, present when there is a next page. */
export const next = z
  .string()
  .optional()
  .meta({ description: 'Cursor of the next page, when there is one.' });

// Paging and filters of the list routes, read one way everywhere: `limit` (default 100, at most
// 1000), a cursor `after`, a few named filters per route, and any other query parameter refused.
import type { Context } from 'hono';
import { type FilterSpec, LIST_DEFAULTS, listQuery } from '../../shared/api-schemas/index.ts';
import { LoomError } from '../../shared/errors/index.ts';

export type { FilterSpec };
export { LIST_DEFAULTS };

/** The schema of a list route's query, for its OpenAPI description (the reader below checks it). */
export function listQuerySchema(filters: Record<string, FilterSpec>, options: { cursor?: boolean } = {}) {
  return listQuery(filters, options);
}

export interface ListQuery<F extends Record<string, FilterSpec>> {
  limit: number;
  after?: string;
  filters: { [K in keyof F]?: F[K] extends 'boolean' ? boolean : string };
}

function bad(field: string, message: string): never {
  throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `${field} ${message}`, { details: { field } });
}

/**
 * Reads `?limit=&after=&<filters>` from the request. Unknown parameters, a parameter given twice
 * and values that do not parse are a 400 naming the parameter.
 */
export function readListQuery<F extends Record<string, FilterSpec>>(
  c: Context,
  filters: F,
  options: { cursor?: boolean } = {},
): ListQuery<F> {
  const known = ['limit', ...(options.cursor === false ? [] : ['after']), ...Object.keys(filters)];
  const all = c.req.queries();
  for (const [name, values] of Object.entries(all)) {
    if (!known.includes(name))
      bad(name, `is not a query parameter of this route (known: ${known.join(', ')})`);
    if (values.length > 1) bad(name, 'is given more than once');
  }
  const one = (name: string): string | undefined => all[name]?.[0];
  let limit: number = LIST_DEFAULTS.limit;
  const rawLimit = one('limit');
  if (rawLimit !== undefined) {
    limit = /^\d{1,7}$/.test(rawLimit) ? Number(rawLimit) : Number.NaN;
    if (!(limit >= 1)) bad('limit', `must be a whole number from 1 to ${LIST_DEFAULTS.maxLimit}`);
    limit = Math.min(limit, LIST_DEFAULTS.maxLimit);
  }
  const out: ListQuery<F> = { limit, filters: {} };
  const after = one('after');
  if (after !== undefined) {
    if (after === '' || after.length > 256) bad('after', 'must be a cursor from a previous page');
    out.after = after;
  }
  for (const [name, spec] of Object.entries(filters)) {
    const raw = one(name);
    if (raw === undefined) continue;
    let value: string | boolean = raw;
    if (spec === 'boolean') {
      if (raw !== 'true' && raw !== 'false') bad(name, 'must be true or false');
      value = raw === 'true';
    } else if (Array.isArray(spec)) {
      if (!spec.includes(raw)) bad(name, `must be one of ${spec.join(', ')}`);
    } else if (raw === '' || raw.length > 256) {
      bad(name, 'must be 1 to 256 characters');
    }
    (out.filters as Record<string, string | boolean>)[name] = value;
  }
  return out;
}

/**
 * One page of `items` (already filtered, sorted by cursor, ascending unless `descending`) after
 * the item whose cursor is `after`, with the cursor of the next page when there is more.
 */
export function page<T>(
  items: readonly T[],
  query: { limit: number; after?: string },
  cursorOf: (item: T) => string | number,
  descending = false,
): { items: T[]; next?: string } {
  let from = 0;
  if (query.after !== undefined && items.length > 0) {
    const numeric = typeof cursorOf(items[0]) === 'number';
    const after = numeric ? Number(query.after) : query.after;
    if (numeric && !Number.isFinite(after)) bad('after', 'must be a number from a previous page');
    // Works whether or not the cursor's item is still listed (an agent that went offline under
    // ?online=true, say): the page starts at the first item that sorts after it.
    from = items.findIndex((item) => (descending ? cursorOf(item) < after : cursorOf(item) > after));
    if (from < 0) from = items.length;
  }
  const slice = items.slice(from, from + query.limit);
  const more = from + query.limit < items.length;
  return more && slice.length > 0
    ? { items: slice, next: String(cursorOf(slice[slice.length - 1])) }
    : { items: slice };
}

/** Refuses every query parameter: for routes that take none. */
export function refuseQuery(c: Context): void {
  const names = Object.keys(c.req.queries());
  if (names.length > 0) bad(names[0], 'is not a query parameter of this route (it takes none)');
}

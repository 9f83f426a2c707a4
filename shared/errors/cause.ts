// Finds a system or library error code (EADDRINUSE, LEVEL_LOCKED) anywhere in a chain of causes.

/** How deep `causeWithCode` looks: wrappers nest a few levels at most. */
const MAX_DEPTH = 8;

/**
 * The first error in `err` and its `cause` chain whose `code` is one of `codes`, or undefined.
 * LevelDB puts LEVEL_LOCKED on the cause of its open error, and Loom wraps both again, so a
 * check of the outer error alone misses it.
 */
export function causeWithCode(
  err: unknown,
  ...codes: string[]
): (Error & { code: string; [key: string]: unknown }) | undefined {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < MAX_DEPTH; depth++, e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && codes.includes(code)) {
      return e as Error & { code: string; [key: string]: unknown };
    }
  }
  return undefined;
}

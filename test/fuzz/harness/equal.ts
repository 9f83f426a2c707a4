// Exact comparison for round trips: numbers by Object.is (so NaN equals NaN and -0 differs from 0),
// binary by content whatever its class, objects by own enumerable keys.

export interface CompareOptions {
  /** Treat -0 and 0 as equal (msgpack carries -0 as 0). Default false. */
  ignoreZeroSign?: boolean;
}

/** Where `actual` first differs from `expected` (a path like `body.model.layers.1`), or undefined. */
export function firstDifference(
  actual: unknown,
  expected: unknown,
  opts: CompareOptions = {},
  path = '',
): string | undefined {
  const at = path || '(root)';
  if (typeof actual === 'number' && typeof expected === 'number') {
    const same =
      Object.is(actual, expected) || (opts.ignoreZeroSign === true && actual === 0 && expected === 0);
    return same ? undefined : `${at}: ${actual} is not ${expected}`;
  }
  if (actual instanceof Uint8Array || expected instanceof Uint8Array) {
    if (!(actual instanceof Uint8Array && expected instanceof Uint8Array))
      return `${at}: binary on one side only`;
    return Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(
      Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
    )
      ? undefined
      : `${at}: bytes differ`;
  }
  if (ArrayBuffer.isView(actual) || ArrayBuffer.isView(expected)) {
    if (!(ArrayBuffer.isView(actual) && ArrayBuffer.isView(expected)))
      return `${at}: typed array on one side only`;
    if (actual.constructor !== expected.constructor)
      return `${at}: ${actual.constructor.name} is not ${expected.constructor.name}`;
    return firstDifference(
      new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength),
      new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength),
      opts,
      path,
    );
  }
  if (actual === null || expected === null || typeof actual !== 'object' || typeof expected !== 'object') {
    return actual === expected ? undefined : `${at}: ${describe(actual)} is not ${describe(expected)}`;
  }
  if (Array.isArray(actual) !== Array.isArray(expected)) return `${at}: array on one side only`;
  const ak = Object.keys(actual);
  const ek = Object.keys(expected);
  const missing = ek.filter((k) => !ak.includes(k));
  const extra = ak.filter((k) => !ek.includes(k));
  if (missing.length > 0 || extra.length > 0) {
    return `${at}: keys differ (missing [${missing}], extra [${extra}])`;
  }
  for (const k of ek) {
    const d = firstDifference(
      (actual as Record<string, unknown>)[k],
      (expected as Record<string, unknown>)[k],
      opts,
      path ? `${path}.${k}` : k,
    );
    if (d) return d;
  }
  return undefined;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (v === undefined) return 'undefined';
  return typeof v === 'object' ? Object.prototype.toString.call(v) : String(v);
}

/** Throws naming the first difference when `actual` is not exactly `expected`. */
export function assertSame(
  actual: unknown,
  expected: unknown,
  what: string,
  opts: CompareOptions = {},
): void {
  const d = firstDifference(actual, expected, opts);
  if (d) throw new Error(`${what} changed: ${d}`);
}

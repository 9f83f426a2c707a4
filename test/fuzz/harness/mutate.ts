// "Almost valid" inputs: a valid value with one to a few small changes (a field replaced, removed
// or added, a number or string nudged to an edge) or valid bytes with a few bytes changed. A
// validator then gets past its first check, so the fuzzer reaches the later ones.
import * as fc from 'fast-check';
import { anyValue, edgeNumber, edgeString } from './values.ts';

type Container = Record<string, unknown> | unknown[];

/** One node of a value tree: the container holding it and its key (none for the root). */
interface Node {
  parent?: Container;
  key?: string | number;
  value: unknown;
}

function isContainer(v: unknown): v is Container {
  return v !== null && typeof v === 'object' && !ArrayBuffer.isView(v) && !(v instanceof Date);
}

/** A deep copy of arrays and plain objects (own keys kept as own keys, "__proto__" included); binary copied. */
export function deepCopy<T>(value: T): T {
  if (Buffer.isBuffer(value)) return Buffer.from(value) as T;
  if (value instanceof Uint8Array) return Uint8Array.from(value) as T;
  if (Array.isArray(value)) return value.map(deepCopy) as T;
  if (isContainer(value)) {
    const out: Record<string, unknown> = Object.getPrototypeOf(value) === null ? Object.create(null) : {};
    for (const k of Object.keys(value)) {
      Object.defineProperty(out, k, {
        value: deepCopy((value as Record<string, unknown>)[k]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out as T;
  }
  return value;
}

/** Every node of `root`, depth first, root first. */
function nodesOf(root: unknown): Node[] {
  const out: Node[] = [{ value: root }];
  const walk = (v: unknown): void => {
    if (!isContainer(v)) return;
    const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
    for (const key of keys) {
      const child = (v as Record<string | number, unknown>)[key];
      out.push({ parent: v, key, value: child });
      walk(child);
    }
  };
  walk(root);
  return out;
}

export type MutationKind = 'replace' | 'remove' | 'add' | 'nudge' | 'wrap' | 'retype';

export interface Mutation {
  kind: MutationKind;
  /** Which node (modulo the node count). */
  at: number;
  /** The new value for replace/add. */
  value: unknown;
  /** The key an `add` inserts. */
  key: string;
}

function setAt(node: Node, value: unknown): unknown {
  if (node.parent === undefined) return value;
  Object.defineProperty(node.parent, node.key as string, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return undefined;
}

/** A value near `v` of the same type: a number becomes an edge number, a string an edge string or a changed copy. */
function nudged(v: unknown, m: Mutation): unknown {
  if (typeof v === 'number') return typeof m.value === 'number' ? m.value : v + 1;
  if (typeof v === 'string') return typeof m.value === 'string' ? m.value : `${v}\u0000`;
  if (typeof v === 'boolean') return !v;
  if (Array.isArray(v)) return [...v, ...v];
  if (v instanceof Uint8Array) return v.subarray(0, Math.max(0, v.length - 1));
  return m.value;
}

/** `v` as another type carrying "the same" content: 3 ↔ "3", [x] ↔ x, bytes → array of numbers. */
function retyped(v: unknown): unknown {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : [v];
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.length === 1 ? v[0] : Object.fromEntries(v.map((x, i) => [String(i), x]));
  if (v === null) return {};
  return null;
}

/** Applies `mutations` to a copy of `value`; the input is left alone. */
export function applyMutations(value: unknown, mutations: readonly Mutation[]): unknown {
  let root = deepCopy(value);
  for (const original of mutations) {
    // A copy: arbitraries hand out shared constants, which must never be changed in place.
    const m = { ...original, value: deepCopy(original.value) };
    const nodes = nodesOf(root);
    const node = nodes[m.at % nodes.length];
    let next: unknown;
    switch (m.kind) {
      case 'replace':
        next = m.value;
        break;
      case 'nudge':
        next = nudged(node.value, m);
        break;
      case 'retype':
        next = retyped(node.value);
        break;
      case 'wrap':
        next = [node.value];
        break;
      case 'remove':
        if (node.parent === undefined) {
          next = undefined;
        } else if (Array.isArray(node.parent)) {
          node.parent.splice(node.key as number, 1);
          continue;
        } else {
          delete node.parent[node.key as string];
          continue;
        }
        break;
      case 'add':
        if (Array.isArray(node.value)) {
          node.value.push(m.value);
          continue;
        }
        if (isContainer(node.value)) {
          setAt({ parent: node.value, key: m.key, value: undefined }, m.value);
          continue;
        }
        next = m.value;
        break;
    }
    const replaced = setAt(node, next);
    if (node.parent === undefined) root = replaced;
  }
  return root;
}

/** Keys an `add` mutation inserts: typos of real fields, prototype names, anything. */
const extraKey = (): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom('__proto__', 'constructor', 'extra', 'Name', 'id ', ''),
    fc.string({ maxLength: 8 }),
  );

/** One mutation; `replacement` supplies new values (JSON-only for HTTP bodies, binary too for msgpack). */
export function mutation(replacement: fc.Arbitrary<unknown> = anyValue()): fc.Arbitrary<Mutation> {
  return fc.record({
    kind: fc.constantFrom<MutationKind>(
      'replace',
      'replace',
      'remove',
      'add',
      'nudge',
      'nudge',
      'wrap',
      'retype',
    ),
    at: fc.nat(),
    value: fc.oneof(replacement, edgeNumber(), edgeString()),
    key: extraKey(),
  });
}

/** `valid` values with one to `maxMutations` (default 2, mostly 1) mutations. */
export function mutated(
  valid: fc.Arbitrary<unknown>,
  opts: { replacement?: fc.Arbitrary<unknown>; maxMutations?: number } = {},
): fc.Arbitrary<unknown> {
  const mutations = fc.array(mutation(opts.replacement), { minLength: 1, maxLength: opts.maxMutations ?? 2 });
  return fc.tuple(valid, mutations).map(([v, ms]) => applyMutations(v, ms));
}

export type ByteEdit =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'truncate'; at: number };

/** Bytes that mean something in msgpack, IDX, UTF-8 and JSON headers. */
const INTERESTING_BYTES = [
  0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xc4, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xd4, 0xd9, 0xdb, 0xdc, 0xdd,
  0xde, 0xdf, 0x90, 0x9f, 0xa0, 0xbf, 0x08, 0x03, 0x0a, 0x0d, 0x22, 0x2c, 0x5b, 0x7b, 0xed, 0xef,
];

const byteValue = (): fc.Arbitrary<number> =>
  fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.integer({ min: 0, max: 255 }));

export function byteEdit(): fc.Arbitrary<ByteEdit> {
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat(),
        bit: fc.integer({ min: 0, max: 7 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: byteValue() }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        bytes: fc.array(byteValue(), { minLength: 1, maxLength: 4 }).map((b) => Uint8Array.from(b)),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('delete' as const),
        at: fc.nat(),
        count: fc.integer({ min: 1, max: 4 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  );
}

/** `bytes` with `edits` applied (positions modulo the current length); returns a new Buffer. */
export function applyByteEdits(bytes: Uint8Array, edits: readonly ByteEdit[]): Buffer {
  let buf = Buffer.from(bytes);
  for (const e of edits) {
    const n = buf.length;
    switch (e.kind) {
      case 'flip':
        if (n > 0) buf[e.at % n] ^= 1 << e.bit;
        break;
      case 'set':
        if (n > 0) buf[e.at % n] = e.byte;
        break;
      case 'insert': {
        const at = e.at % (n + 1);
        buf = Buffer.concat([buf.subarray(0, at), e.bytes, buf.subarray(at)]);
        break;
      }
      case 'delete': {
        if (n === 0) break;
        const at = e.at % n;
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + e.count)]);
        break;
      }
      case 'truncate':
        buf = buf.subarray(0, e.at % (n + 1));
        break;
    }
  }
  return Buffer.from(buf);
}

/** `valid` bytes with one to four edits. */
export function mutatedBytes(valid: fc.Arbitrary<Uint8Array>, maxEdits = 4): fc.Arbitrary<Buffer> {
  return fc
    .tuple(valid, fc.array(byteEdit(), { minLength: 1, maxLength: maxEdits }))
    .map(([bytes, edits]) => applyByteEdits(bytes, edits));
}

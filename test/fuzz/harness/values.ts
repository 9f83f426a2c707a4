// Building blocks for inputs: values at the edges of what validators check (lengths, integer
// limits, float32 range, odd Unicode), and strings that JSON, msgpack and URLs treat specially.
import * as fc from 'fast-check';

/** Numbers next to the limits validators use: 0/-0, ±1, int32/uint32/safe-integer edges, float32 and float64 edges. */
export const EDGE_NUMBERS: readonly number[] = [
  0,
  -0,
  1,
  -1,
  2,
  0.5,
  -0.5,
  10,
  100,
  101,
  255,
  256,
  1000,
  1001,
  65_536,
  65_537,
  1 << 24,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 32,
  1e15,
  1e16,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 1,
  -Number.MAX_SAFE_INTEGER - 2,
  3.5e38,
  1e308,
  -1e308,
  Number.MIN_VALUE,
  Number.EPSILON,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
];

/** Strings validators and parsers treat specially: empty, blank, long, control and bidi characters, lone surrogates, JSON and path syntax, prototype names. */
export const EDGE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\t',
  'a',
  '0',
  '-1',
  '1e3',
  '0x10',
  'NaN',
  'Infinity',
  'null',
  'true',
  '[]',
  '{}',
  '"',
  '\\',
  '\u0000',
  '\u001b[31m',
  '\u202e',
  '\ufeff',
  '\ud800',
  '\udc00a',
  '😀',
  'é',
  '..',
  '../',
  '%',
  '%00',
  '%2F',
  '/',
  '?',
  '#',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'a'.repeat(63),
  'a'.repeat(64),
  'a'.repeat(65),
  'a'.repeat(128),
  'a'.repeat(129),
  'a'.repeat(256),
  'a'.repeat(257),
  'a'.repeat(513),
  'a'.repeat(4097),
];

export const edgeNumber = (): fc.Arbitrary<number> => fc.constantFrom(...EDGE_NUMBERS);
export const edgeString = (): fc.Arbitrary<string> => fc.constantFrom(...EDGE_STRINGS);

/** Any string, lone surrogates included (what a decoded frame or a hostile client can hold). */
export function anyString(maxLength = 24): fc.Arbitrary<string> {
  const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength }) },
    {
      weight: 1,
      arbitrary: fc.string({
        unit: fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), loneSurrogate),
        maxLength,
      }),
    },
    { weight: 1, arbitrary: edgeString() },
  );
}

/** A well-formed Unicode string of at most `max` UTF-16 units (what validators count). */
export function textUpTo(max: number, min = 0): fc.Arbitrary<string> {
  const short = fc.string({ unit: 'binary', minLength: min, maxLength: Math.min(Math.floor(max / 2), 40) });
  return max >= 1 && min <= max
    ? fc.oneof({ weight: 9, arbitrary: short }, { weight: 1, arbitrary: fc.constant('x'.repeat(max)) })
    : short;
}

/** A JSON value without -0 (which JSON cannot carry: it comes back as 0). */
export function jsonValue(maxDepth = 3): fc.Arbitrary<unknown> {
  return fc.jsonValue({ maxDepth, stringUnit: 'binary' }).map((v) => JSON.parse(JSON.stringify(v)));
}

/** Any value at all for a field: edge values, JSON values, binary, undefined. */
export function anyValue(opts: { binary?: boolean } = {}): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: edgeNumber() },
    { weight: 3, arbitrary: edgeString() },
    { weight: 2, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], [[]], { a: 1 }) },
    { weight: 2, arbitrary: jsonValue(2) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    ...(opts.binary
      ? [{ weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }) as fc.Arbitrary<unknown> }]
      : []),
  );
}

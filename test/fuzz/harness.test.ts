// The fuzz harness itself: inputs survive a regression file exactly, saved cases name known
// targets, mutations leave their source alone, and target names are unique.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { firstDifference } from './harness/equal.ts';
import { applyByteEdits, applyMutations, byteEdit, deepCopy, mutation } from './harness/mutate.ts';
import { REGRESSIONS_DIR, type RegressionFile } from './harness/regressions.ts';
import { fromJsonSafe, toJsonSafe } from './harness/serialize.ts';
import { anyValue } from './harness/values.ts';
import { ALL_TARGETS } from './targets/index.ts';

const anyInput = () =>
  fc.anything({
    maxDepth: 3,
    withTypedArray: true,
    withDate: true,
    withNullPrototype: true,
    withBigInt: true,
    stringUnit: 'binary',
  });

describe('fuzz harness', () => {
  it('saves any input as JSON and reads it back exactly', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          anyInput(),
          fc.constantFrom({ $: 'x' }, { ['__proto__']: 1 }, [-0, Number.NaN], Buffer.from('ab')),
        ),
        (value) => {
          const back = fromJsonSafe(JSON.parse(JSON.stringify(toJsonSafe(value))));
          expect(firstDifference(back, value)).toBeUndefined();
          expect(Buffer.isBuffer(back)).toBe(Buffer.isBuffer(value));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps an own "__proto__" key an own key', () => {
    const value = JSON.parse('{"__proto__": {"role": "admin"}}') as Record<string, unknown>;
    const back = fromJsonSafe(JSON.parse(JSON.stringify(toJsonSafe(value)))) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toEqual(['__proto__']);
  });

  it('mutates a copy, never the value it was given', () => {
    fc.assert(
      fc.property(
        anyValue({ binary: true }),
        fc.array(mutation(), { maxLength: 3 }),
        fc.array(byteEdit(), { maxLength: 3 }),
        (value, ms, edits) => {
          const before = deepCopy(value);
          applyMutations(value, ms);
          expect(firstDifference(value, before)).toBeUndefined();
          const bytes = Uint8Array.from([1, 2, 3]);
          applyByteEdits(bytes, edits);
          expect([...bytes]).toEqual([1, 2, 3]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('has unique target names of the form family.name', () => {
    const names = ALL_TARGETS.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[a-z]+\.[a-z-]+$/);
  });

  it('keeps only regression files that name a known target and hold an input', () => {
    const names = new Set(ALL_TARGETS.map((t) => t.name));
    for (const file of readdirSync(REGRESSIONS_DIR).filter((f) => f.endsWith('.json'))) {
      const saved = JSON.parse(readFileSync(join(REGRESSIONS_DIR, file), 'utf8')) as RegressionFile;
      expect(names.has(saved.target), `${file} names unknown target ${saved.target}`).toBe(true);
      expect(file.startsWith(`${saved.target}-`), `${file} is not named after its target`).toBe(true);
      expect(saved).toHaveProperty('input');
      expect(typeof saved.error).toBe('string');
    }
  });
});

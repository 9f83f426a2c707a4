// Saved counterexamples: one JSON file per failure found, `regressions/<target>-<hash>.json`,
// replayed first by the target's short run in `npm test`.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorSummary, type RunResult } from './runner.ts';
import { fromJsonSafe, toJsonSafe } from './serialize.ts';

export const REGRESSIONS_DIR = fileURLToPath(new URL('../regressions/', import.meta.url));

/** The content of a regression file. */
export interface RegressionFile {
  target: string;
  /** What failed when it was found (the bug it recorded is fixed once it passes). */
  error: string;
  /** fast-check seed and path that found it, for `npm run fuzz -- --target T --seed S --path P`. */
  seed: number;
  path: string;
  found: string;
  /** The input, as `toJsonSafe` writes it (binary as base64). */
  input: unknown;
}

export interface RegressionCase {
  file: string;
  input: unknown;
}

/** Every saved case of `target`, by file name order. The target is read from the file, not its name. */
export function loadRegressions(target: string, dir = REGRESSIONS_DIR): RegressionCase[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.sort().flatMap((name) => {
    const file = join(dir, name);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as RegressionFile;
    return saved.target === target ? [{ file, input: fromJsonSafe(saved.input) }] : [];
  });
}

/** Writes the failure of `result` as a regression file; returns its path. Same input, same file. */
export function saveRegression(result: RunResult, dir = REGRESSIONS_DIR): string {
  const failure = result.failure;
  if (!failure) throw new TypeError('saveRegression needs a failed run');
  const input = toJsonSafe(failure.input);
  const hash = createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 12);
  const saved: RegressionFile = {
    target: result.target,
    error: errorSummary(failure.error, 1),
    seed: result.seed,
    path: failure.path,
    found: new Date().toISOString(),
    input,
  };
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${result.target}-${hash}.json`);
  writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`);
  return file;
}

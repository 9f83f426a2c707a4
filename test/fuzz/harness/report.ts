// A failed run as text: the input, the error, and the command that replays and saves it.
import { errorSummary, type RunResult } from './runner.ts';
import { toJsonSafe } from './serialize.ts';

/** At most this many characters of the input are shown; the regression file holds all of it. */
const MAX_INPUT_CHARS = 2000;

export function describeFailure(result: RunResult): string {
  const f = result.failure;
  if (!f) return `${result.target}: no failure`;
  let input: string;
  try {
    input = JSON.stringify(toJsonSafe(f.input));
  } catch (err) {
    input = `(cannot be shown: ${(err as Error).message})`;
  }
  if (input.length > MAX_INPUT_CHARS)
    input = `${input.slice(0, MAX_INPUT_CHARS)}… (${input.length} characters)`;
  return [
    `${result.target} failed after ${result.runs} cases (seed ${result.seed}, path "${f.path}", ${f.shrinks} shrinks)`,
    `input: ${input}`,
    `error: ${errorSummary(f.error, 4)}`,
    `replay and save it: npm run fuzz -- --target ${result.target} --seed=${result.seed} --path ${f.path}`,
  ].join('\n');
}

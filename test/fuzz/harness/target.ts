// What a fuzz target is: a generator of inputs and a property every input must satisfy, run in a
// context (a database, a model server, a temp folder) that the target sets up and tears down.
import type * as fc from 'fast-check';

/**
 * One fuzz target. `check` is written as a method so a target of any input type fits in a list of
 * `FuzzTarget` (method parameters are compared bivariantly).
 */
export interface FuzzTarget<Input = unknown, Ctx = unknown> {
  /** `family.name`, unique; names the regression files and the `--target` flag of `npm run fuzz`. */
  readonly name: string;
  /** One line: what is fed to what, and what must hold. */
  readonly description: string;
  /** Cases of the short run inside `npm test`. */
  readonly shortRuns: number;
  /**
   * Most CPU time one case may use before it counts as a loop, in ms; a case still waiting after
   * ten times that (wall time) counts as a hang. Default `CASE_TIMEOUT_MS`.
   */
  readonly caseTimeoutMs?: number;
  /** Process memory (RSS) a case may reach before it fails as unbounded, in MiB. Default `CASE_MEMORY_LIMIT_MB`. */
  readonly caseMemoryLimitMb?: number;
  /**
   * The inputs. They must not depend on the context: a saved regression case is replayed in a
   * fresh one (a context-specific value such as a token is named by a placeholder instead).
   */
  input(): fc.Arbitrary<Input>;
  /** Builds what `check` runs against; called once per run, before the first case. */
  setup?(): Promise<Ctx>;
  /** Frees everything `setup` made: handles, tensors, temp folders. */
  teardown?(ctx: Ctx): Promise<void>;
  /** Throws when the property does not hold for `input`. */
  check(input: Input, ctx: Ctx): void | Promise<void>;
}

/** Default of `FuzzTarget.caseTimeoutMs`: far above any sane case, low enough to call a hang a hang. */
export const CASE_TIMEOUT_MS = 5_000;

/** Default of `FuzzTarget.caseMemoryLimitMb`: several times what any target needs (~300 MiB). */
export const CASE_MEMORY_LIMIT_MB = 1_536;

/** Typed identity, so a target's input and context types are inferred from its functions. */
export function defineTarget<Input, Ctx = undefined>(target: FuzzTarget<Input, Ctx>): FuzzTarget<Input, Ctx> {
  return target;
}

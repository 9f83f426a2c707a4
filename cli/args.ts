// Flag parsing for every `loom` subcommand: one table of flags, a usage text, and one-line errors.
import { parseArgs } from 'node:util';
import { LoomError } from '../shared/errors/index.ts';

export interface FlagSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  description: string;
  /** Shown in the usage text. */
  default?: string;
  required?: boolean;
  /**
   * An old name kept working: its value is given to the flag named here, a warning says to use
   * that one instead, and the help lists it as deprecated.
   */
  deprecatedFor?: string;
}

export interface CommandSpec {
  usage: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  /**
   * Arguments after the command words, in order (default none): required unless `optional`; the
   * last may be `variadic` (any number of them, at least one unless also optional).
   */
  positionals?: { name: string; description: string; optional?: boolean; variadic?: boolean }[];
}

/** A command as it runs: resolves with the exit code. */
export type Command = (argv: string[]) => Promise<number>;

/** One entry of the `loom` command table. */
export interface CommandEntry {
  spec: CommandSpec;
  /** One line in the command lists of `loom --help` and `loom <group> --help`. */
  brief: string;
  /** Loads the command only when it runs, so `--help` and usage errors answer at once. */
  load: () => Promise<Command>;
}

export function helpText(spec: CommandSpec): string {
  const lines = [`Usage: ${spec.usage}`, '', spec.summary, ''];
  if (spec.positionals?.length) {
    const argWidth = Math.max(...spec.positionals.map((p) => p.name.length)) + 4;
    lines.push(
      'Arguments:',
      ...spec.positionals.map((p) => `  ${p.name.padEnd(argWidth)}${p.description}`),
      '',
    );
  }
  lines.push('Options:');
  const entries = Object.entries({
    ...spec.flags,
    help: { type: 'boolean', description: 'show this help' } as FlagSpec,
  });
  const width = Math.max(...entries.map(([n, f]) => n.length + (f.type === 'string' ? 8 : 0))) + 4;
  for (const [name, f] of entries) {
    const left = `--${name}${f.type === 'string' ? ' <value>' : ''}`;
    const extra = [
      f.deprecatedFor ? `deprecated: use --${f.deprecatedFor}` : '',
      f.required ? 'required' : '',
      f.default !== undefined ? `default ${f.default}` : '',
      f.multiple ? 'repeatable' : '',
    ]
      .filter(Boolean)
      .join(', ');
    lines.push(`  ${left.padEnd(width)}${f.description}${extra ? ` (${extra})` : ''}`);
  }
  return lines.join('\n');
}

export type ParsedFlags = Record<string, string | boolean | string[] | undefined>;

/** What `parseFlags` found: the values, whether help was asked for, and warnings to show once. */
export interface ParsedCommandLine {
  help: boolean;
  flags: ParsedFlags;
  /** The command's arguments (`spec.positionals`), in order. */
  positionals: string[];
  /** One line each, e.g. for a deprecated flag; `main` prints them on stderr. */
  warnings: string[];
}

/** Edit distance with adjacent transpositions (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `word` when it is close enough to be a likely typo (at most a third of
 * the word's length in edits, at least 1 and at most 3), else the only candidate that starts with
 * `word` (an abbreviation such as `--inference`), else undefined.
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const dist = editDistance(word, c);
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  if (best !== undefined && bestDistance <= limit) return best;
  const prefixed = candidates.filter((c) => word.length >= 3 && c.startsWith(word));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** A negative or fractional number written as the next word: `--rounds -1`, `--lr -.5`. */
const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/**
 * Checks every `--name` against the spec before node's parser sees it, so an unknown one can
 * suggest the nearest known name, and joins a string flag with a following negative number
 * (`--rounds -1` → `--rounds=-1`), which the parser would otherwise call "ambiguous", so that the
 * value reaches the range check of its flag.
 */
function prepareArgv(spec: CommandSpec, argv: string[]): string[] {
  const known = [...Object.keys(spec.flags), 'help'];
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (!arg.startsWith('--')) {
      out.push(arg);
      continue;
    }
    const name = arg.slice(2).split('=', 1)[0];
    if (!known.includes(name)) {
      const guess = nearest(name, known);
      throw new LoomError(
        'LOOM_ERR_INVALID_ARGUMENT',
        `unknown option --${name}${guess ? `; did you mean --${guess}?` : ''} (see --help)`,
      );
    }
    const next = argv[i + 1];
    if (
      !arg.includes('=') &&
      spec.flags[name]?.type === 'string' &&
      next !== undefined &&
      NEGATIVE_NUMBER.test(next)
    ) {
      out.push(`${arg}=${next}`);
      i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}

/**
 * Parses argv against the spec. Unknown flags (with the nearest known one suggested), missing
 * values, a wrong number of arguments and missing required flags are LOOM_ERR_INVALID_ARGUMENT. A deprecated
 * flag's value goes to its replacement, with a warning.
 */
export function parseFlags(spec: CommandSpec, argv: string[]): ParsedCommandLine {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    help: { type: 'boolean' },
  };
  for (const [name, f] of Object.entries(spec.flags))
    options[name] = { type: f.type, ...(f.multiple ? { multiple: true } : {}) };
  const expected = spec.positionals ?? [];
  let values: ParsedFlags;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: prepareArgv(spec, argv),
      options,
      strict: true,
      allowPositionals: expected.length > 0,
    });
    values = parsed.values as ParsedFlags;
    positionals = parsed.positionals;
  } catch (err) {
    if (err instanceof LoomError) throw err;
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `${(err as Error).message.split('\n')[0]} (see --help)`);
  }
  if (values.help) return { help: true, flags: values, positionals, warnings: [] };
  const least = expected.filter((p) => !p.optional).length;
  const most = expected.at(-1)?.variadic ? Number.POSITIVE_INFINITY : expected.length;
  if (positionals.length < least || positionals.length > most) {
    const names = expected
      .map((p) => `${p.name}${p.variadic ? ' ...' : ''}`)
      .map((n, i) => (expected[i].optional ? `[${n}]` : n))
      .join(' ');
    const count =
      least === most
        ? String(least)
        : most === Number.POSITIVE_INFINITY
          ? `at least ${least}`
          : `${least} to ${most}`;
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      `expected ${count} argument${(least === most || most === Number.POSITIVE_INFINITY ? least : most) === 1 ? '' : 's'} (${names}), got ${positionals.length} (see --help)`,
    );
  }
  const warnings: string[] = [];
  for (const [name, f] of Object.entries(spec.flags)) {
    if (!f.deprecatedFor || values[name] === undefined) continue;
    const target = f.deprecatedFor;
    warnings.push(`--${name} is deprecated here and will be removed; use --${target}`);
    const old = values[name];
    const current = values[target];
    if (spec.flags[target]?.multiple) {
      const list = (v: ParsedFlags[string]): string[] =>
        Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
      values[target] = [...list(current), ...list(old)];
    } else if (current === undefined) {
      values[target] = old;
    } else {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `give --${target} or --${name}, not both`);
    }
    delete values[name];
  }
  for (const [name, f] of Object.entries(spec.flags)) {
    if (f.required && (values[name] === undefined || values[name] === '')) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--${name} is required (see --help)`);
    }
  }
  return { help: false, flags: values, positionals, warnings };
}

/** A whole number flag within [min, max]. */
export function intFlag(flags: ParsedFlags, name: string, fallback: number, min = 0, max = 65_535): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      `--${name} must be a whole number from ${min} to ${max}`,
    );
  }
  return n;
}

export function stringFlag(flags: ParsedFlags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function printHelp(spec: CommandSpec): number {
  process.stdout.write(`${helpText(spec)}\n`);
  return 0;
}

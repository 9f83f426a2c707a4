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
}

export interface CommandSpec {
  usage: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  /** Required arguments after the flags' command words, in order (default none). */
  positionals?: { name: string; description: string }[];
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

/**
 * Parses argv against the spec; unknown flags, missing values, missing required flags and a
 * wrong number of arguments are LOOM_ERR_INVALID_ARGUMENT.
 */
export function parseFlags(
  spec: CommandSpec,
  argv: string[],
): { help: boolean; flags: ParsedFlags; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    help: { type: 'boolean' },
  };
  for (const [name, f] of Object.entries(spec.flags))
    options[name] = { type: f.type, ...(f.multiple ? { multiple: true } : {}) };
  const expected = spec.positionals ?? [];
  let values: ParsedFlags;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: expected.length > 0 });
    values = parsed.values as ParsedFlags;
    positionals = parsed.positionals;
  } catch (err) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `${(err as Error).message.split('\n')[0]} (see --help)`);
  }
  if (values.help) return { help: true, flags: values, positionals };
  if (positionals.length !== expected.length) {
    const names = expected.map((p) => p.name).join(' ');
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      `expected ${expected.length} argument${expected.length === 1 ? '' : 's'} (${names}), got ${positionals.length} (see --help)`,
    );
  }
  for (const [name, f] of Object.entries(spec.flags)) {
    if (f.required && (values[name] === undefined || values[name] === '')) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--${name} is required (see --help)`);
    }
  }
  return { help: false, flags: values, positionals };
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

// The CLI's flag parsing: typos get the nearest known flag, negative numbers reach their range
// check, deprecated names keep working; and the API URL shown to people names a certificate host.
import { describe, expect, it } from 'vitest';
import { type CommandSpec, intFlag, nearest, parseFlags } from '../../cli/args.ts';
import { apiUrlFor } from '../../coordinator/setup/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';

const spec: CommandSpec = {
  usage: 'loom test',
  summary: 'a command for tests',
  flags: {
    'data-dir': { type: 'string', description: 'd', required: true },
    rounds: { type: 'string', description: 'r' },
    'cert-host': { type: 'string', multiple: true, description: 'c' },
    host: { type: 'string', multiple: true, description: 'old', deprecatedFor: 'cert-host' },
    json: { type: 'boolean', description: 'j' },
  },
};

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isLoomError(err, 'LOOM_ERR_INVALID_ARGUMENT')) return err.message;
    throw err;
  }
  throw new Error('expected LOOM_ERR_INVALID_ARGUMENT');
}

describe('parseFlags', () => {
  it('suggests the nearest known flag for a typo, and nothing for a word far from all of them', () => {
    expect(messageOf(() => parseFlags(spec, ['--data-dri', 'x']))).toBe(
      'unknown option --data-dri; did you mean --data-dir? (see --help)',
    );
    expect(messageOf(() => parseFlags(spec, ['--round', '3']))).toMatch(/did you mean --rounds\?/);
    expect(messageOf(() => parseFlags(spec, ['--zzzzzz']))).toBe('unknown option --zzzzzz (see --help)');
    expect(nearest('cert', ['cert-host', 'data-dir'])).toBe('cert-host');
  });

  it('passes a negative number to its flag, so the range check answers rather than "ambiguous"', () => {
    const { flags } = parseFlags(spec, ['--data-dir', 'd', '--rounds', '-1']);
    expect(flags.rounds).toBe('-1');
    expect(messageOf(() => intFlag(flags, 'rounds', 5, 1, 1000))).toBe(
      '--rounds must be a whole number from 1 to 1000',
    );
  });

  it('gives a deprecated flag its value to the new one, with a warning', () => {
    const parsed = parseFlags(spec, ['--data-dir', 'd', '--host', 'a', '--cert-host', 'b']);
    expect(parsed.flags['cert-host']).toEqual(['b', 'a']);
    expect(parsed.flags.host).toBeUndefined();
    expect(parsed.warnings).toEqual(['--host is deprecated here and will be removed; use --cert-host']);
  });
});

describe('apiUrlFor', () => {
  it('uses the first certificate name for a wildcard bind, and the bind address when the certificate names it', () => {
    expect(apiUrlFor('0.0.0.0', ['loom.example.com', '10.0.0.5'], 8443)).toEqual({
      url: 'https://loom.example.com:8443',
      host: 'loom.example.com',
      matchesBind: true,
    });
    expect(apiUrlFor('::', ['::1'], 1).url).toBe('https://[::1]:1');
    expect(apiUrlFor('10.0.0.5', ['loom.example.com', '10.0.0.5'], 8443).url).toBe('https://10.0.0.5:8443');
  });

  it('says when a specific bind address is not in the certificate', () => {
    expect(apiUrlFor('192.168.1.9', ['loom.example.com'], 8443)).toEqual({
      url: 'https://loom.example.com:8443',
      host: 'loom.example.com',
      matchesBind: false,
    });
  });
});

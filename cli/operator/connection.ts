// The flags every operator command shares: where the coordinator is, the token, the pinned CA and
// --json; and the API client they make.
import { readFile } from 'node:fs/promises';
import { CONNECTION_ENV, LoomClient } from '../../shared/api-client/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { type CommandSpec, type FlagSpec, type ParsedFlags, stringFlag } from '../args.ts';

/** Connection flags, each falling back to its environment variable. */
export const CONNECTION_FLAGS: Record<string, FlagSpec> = {
  url: {
    type: 'string',
    description: `operator API of the coordinator, https://HOST:PORT ($${CONNECTION_ENV.url})`,
  },
  'token-file': {
    type: 'string',
    description: `file holding the API token (default $${CONNECTION_ENV.token})`,
  },
  token: {
    type: 'string',
    description: `API token (visible in ps; prefer $${CONNECTION_ENV.token} or --token-file)`,
  },
  'ca-fingerprint': {
    type: 'string',
    description: `SHA-256 of the Loom CA, as "loom coordinator init" prints it ($${CONNECTION_ENV.caFingerprint})`,
  },
  'ca-file': {
    type: 'string',
    description: `the coordinator's CA certificate, pki/ca-cert.pem ($${CONNECTION_ENV.caFile})`,
  },
};

/** Text appended to the summary of every operator command. */
const CONNECTION_NOTE =
  `Connects to the operator API at --url or $${CONNECTION_ENV.url} with the token of --token-file or\n` +
  `$${CONNECTION_ENV.token}, trusting only the Loom CA pinned by --ca-fingerprint ($${CONNECTION_ENV.caFingerprint})\n` +
  `or read from --ca-file ($${CONNECTION_ENV.caFile}).`;

/**
 * A spec for a command that calls the operator API: its own flags, then the connection flags and
 * --json (described by `json`).
 */
export function operatorSpec(spec: {
  usage: string;
  summary: string;
  flags?: Record<string, FlagSpec>;
  positionals?: CommandSpec['positionals'];
  json: string;
  /** Leave the connection note out of the summary (a command that may also work offline says its own). */
  note?: string;
}): CommandSpec {
  return {
    usage: `${spec.usage} [connection flags]`,
    summary: `${spec.summary}\n${spec.note ?? CONNECTION_NOTE}`,
    flags: { ...spec.flags, ...CONNECTION_FLAGS, json: { type: 'boolean', description: spec.json } },
    ...(spec.positionals ? { positionals: spec.positionals } : {}),
  };
}

/** The API client the connection flags (or their variables) describe. */
export async function clientFromFlags(flags: ParsedFlags): Promise<LoomClient> {
  const tokenFile = stringFlag(flags, 'token-file');
  const tokenFlag = stringFlag(flags, 'token');
  if (tokenFile !== undefined && tokenFlag !== undefined) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'give --token-file or --token, not both');
  }
  let token = tokenFlag;
  if (tokenFile !== undefined) {
    token = (
      await readFile(tokenFile, 'utf8').catch((err: unknown) => {
        throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `cannot read the token file ${tokenFile}`, {
          cause: err,
        });
      })
    ).trim();
  }
  return new LoomClient({
    ...(stringFlag(flags, 'url') ? { url: stringFlag(flags, 'url') } : {}),
    ...(token ? { token } : {}),
    ...(stringFlag(flags, 'ca-fingerprint') ? { caFingerprint: stringFlag(flags, 'ca-fingerprint') } : {}),
    ...(stringFlag(flags, 'ca-file') ? { caFile: stringFlag(flags, 'ca-file') } : {}),
  });
}

/** A number flag (any finite number), or undefined when absent. */
export function numberFlag(flags: ParsedFlags, name: string): number | undefined {
  const raw = stringFlag(flags, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--${name} must be a number`);
  }
  return n;
}

/** A whole-number flag of at least `min`, or undefined when absent. */
export function countFlag(flags: ParsedFlags, name: string, min = 0): number | undefined {
  const n = numberFlag(flags, name);
  if (n === undefined) return undefined;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--${name} must be a whole number of at least ${min}`);
  }
  return n;
}

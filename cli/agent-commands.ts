// `loom agent enroll` and `loom agent start`.
import { readFile, stat } from 'node:fs/promises';
import { EdgeAgent, enrollAgent } from '../edge-agent/index.ts';
import { LoomError } from '../shared/errors/index.ts';
import { createLogger } from '../shared/log/index.ts';
import { intFlag, type ParsedFlags, parseFlags, printHelp, stringFlag } from './args.ts';
import { waitForShutdownSignal } from './signals.ts';
import { agentEnrollSpec, agentStartSpec, ENROLLMENT_TOKEN_ENV } from './specs.ts';

/** Longest token file read; a token is about 130 characters, so anything bigger is the wrong file. */
const MAX_TOKEN_FILE_BYTES = 4096;

/**
 * The enrollment token from exactly one of --token and --token-file or, when neither flag is
 * given, from `env.LOOM_ENROLLMENT_TOKEN` (flags win over the environment, as for every setting).
 * LOOM_ERR_INVALID_ARGUMENT when both flags, or no source at all, are given, or the file is unusable.
 */
export async function enrollmentTokenFrom(
  flags: ParsedFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const inline = stringFlag(flags, 'token');
  const file = stringFlag(flags, 'token-file');
  if (inline !== undefined && file !== undefined) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'give --token or --token-file, not both');
  }
  if (file !== undefined) {
    const unreadable = (reason: string, cause?: unknown): LoomError =>
      new LoomError('LOOM_ERR_INVALID_ARGUMENT', `cannot read --token-file ${file}: ${reason}`, { cause });
    let text: string;
    try {
      if ((await stat(file)).size > MAX_TOKEN_FILE_BYTES) {
        throw unreadable(`it is larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
      }
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw err instanceof LoomError ? err : unreadable((err as Error).message, err);
    }
    const token = text.trim();
    if (!token) throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--token-file ${file} is empty`);
    return token;
  }
  if (inline !== undefined) return inline;
  const fromEnv = env[ENROLLMENT_TOKEN_ENV]?.trim();
  if (fromEnv) return fromEnv;
  throw new LoomError(
    'LOOM_ERR_INVALID_ARGUMENT',
    `an enrollment token is required: --token-file PATH, $${ENROLLMENT_TOKEN_ENV} or --token (see --help)`,
  );
}

export async function agentEnroll(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(agentEnrollSpec, argv);
  if (help) return printHelp(agentEnrollSpec);
  const name = stringFlag(flags, 'name');
  const token = await enrollmentTokenFrom(flags);
  const identity = await enrollAgent({
    coordinatorUrl: stringFlag(flags, 'coordinator')!,
    token,
    dataDir: stringFlag(flags, 'data-dir')!,
    ...(name ? { name } : {}),
  });
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ agentId: identity.agentId, name: identity.name, agentUrl: identity.agentUrl })}\n`,
    );
  } else {
    process.stdout.write(
      `Enrolled as ${identity.agentId} (${identity.name}); certificate valid, CA pinned.\n` +
        `Start it with: loom agent start --data-dir ${stringFlag(flags, 'data-dir')} --data PATH\n`,
    );
  }
  return 0;
}

export async function agentStart(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(agentStartSpec, argv);
  if (help) return printHelp(agentStartSpec);
  const format = stringFlag(flags, 'format');
  if (format !== undefined && !['idx', 'csv', 'jsonl'].includes(format)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--format must be idx, csv or jsonl');
  }
  const logFormat = stringFlag(flags, 'log-format') ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--log-format must be text or json');
  }
  // Edge serving: TLS of the inference API takes both files or neither.
  const tlsCert = stringFlag(flags, 'inference-tls-cert');
  const tlsKey = stringFlag(flags, 'inference-tls-key');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      'give --inference-tls-cert and --inference-tls-key together',
    );
  }
  const log = createLogger({ format: logFormat, component: 'agent' });
  const labelColumn = stringFlag(flags, 'label-column');
  const agent = new EdgeAgent({
    dataDir: stringFlag(flags, 'data-dir')!,
    dataPath: stringFlag(flags, 'data')!,
    ...(format ? { format: format as 'idx' | 'csv' | 'jsonl' } : {}),
    ...(labelColumn ? { labelColumn } : {}),
    inferenceHost: stringFlag(flags, 'inference-host') ?? '127.0.0.1',
    inferencePort: intFlag(flags, 'inference-port', 8501),
    // Edge serving: revocation policy, API keys and TLS of the inference API.
    ...(flags['serve-when-revoked'] ? { serveWhenRevoked: true } : {}),
    ...(flags['require-api-key'] ? { requireApiKey: true } : {}),
    ...(tlsCert && tlsKey ? { inferenceTls: { certPath: tlsCert, keyPath: tlsKey } } : {}),
    log,
  });
  await agent.start();
  if (flags.json) {
    const s = agent.status();
    process.stdout.write(
      `${JSON.stringify({ agentId: s.agentId, name: s.name, inferenceUrl: s.inferenceUrl, examples: s.examples, backend: s.backend })}\n`,
    );
  }
  const signal = await waitForShutdownSignal();
  log.info('shutting down', { signal });
  await agent.stop();
  return 0;
}

// `loom agent enroll` and `loom agent start`.
import { readFile, stat } from 'node:fs/promises';
import {
  BATCHING_DEFAULTS,
  DEFAULT_TRAINING_THREADS,
  EdgeAgent,
  type ExistingIdentity,
  enrollAgent,
} from '../edge-agent/index.ts';
import { openLocalModelStore } from '../edge-agent/store/index.ts';
import {
  DATA_KEY_ENV,
  type DataKey,
  envKeyProvider,
  fileKeyProvider,
  loadDataKey,
} from '../shared/crypto/index.ts';
import { LoomError } from '../shared/errors/index.ts';
import { createLogger } from '../shared/log/index.ts';
import { parseLabelPair } from '../shared/protocol/index.ts';
import { intFlag, type ParsedFlags, parseFlags, printHelp, stringFlag } from './args.ts';
import { waitForShutdownSignal } from './signals.ts';
import { agentCheckSpec, agentEnrollSpec, agentStartSpec, ENROLLMENT_TOKEN_ENV } from './specs.ts';

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

/** The store key the flags and environment name: $LOOM_DATA_KEY, else --data-key-file, else the store's default. */
async function agentDataKey(flags: ParsedFlags): Promise<DataKey | undefined> {
  if (process.env[DATA_KEY_ENV]) return loadDataKey(envKeyProvider());
  const file = stringFlag(flags, 'data-key-file');
  return file ? loadDataKey(fileKeyProvider(file)) : undefined;
}

export async function agentCheck(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(agentCheckSpec, argv);
  if (help) return printHelp(agentCheckSpec);
  const dataDir = stringFlag(flags, 'data-dir')!;
  const dataKey = await agentDataKey(flags);
  const store = await openLocalModelStore(dataDir, dataKey ? { dataKey } : {});
  try {
    const problems = await store.check({ full: true });
    const removed = flags.repair && problems.length > 0 ? (await store.repair()).removed : [];
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ ok: problems.length === 0, problems, removed })}\n`);
    } else {
      const lines =
        problems.length === 0 ? ['the model store is whole'] : [`${problems.length} problem(s) found:`];
      for (const p of problems) lines.push(`  - [${p.kind}] ${p.message}`);
      if (flags.repair && problems.length > 0) lines.push(`removed: ${removed.join(', ') || 'nothing'}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return problems.length === 0 || flags.repair ? 0 : 1;
  } finally {
    await store.close();
  }
}

export async function agentEnroll(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(agentEnrollSpec, argv);
  if (help) return printHelp(agentEnrollSpec);
  const name = stringFlag(flags, 'name');
  const dataDir = stringFlag(flags, 'data-dir')!;
  const token = await enrollmentTokenFrom(flags);
  const labelFlags = flags.label;
  const labels = Object.fromEntries(
    (Array.isArray(labelFlags) ? labelFlags : typeof labelFlags === 'string' ? [labelFlags] : []).map((l) =>
      parseLabelPair(String(l), '--label'),
    ),
  );
  let replaced: ExistingIdentity | undefined;
  const identity = await enrollAgent({
    coordinatorUrl: stringFlag(flags, 'coordinator')!,
    token,
    dataDir,
    ...(name ? { name } : {}),
    labels,
    force: flags.force === true,
    onReplace: (previous) => {
      replaced = previous;
    },
  });
  if (replaced) {
    // On stderr, so that --json output stays one object; the old agent stays enrolled until revoked.
    process.stderr.write(
      `loom: --force: replaced ${replaced.agentId ? `the identity of agent ${replaced.agentId}${replaced.name ? ` ("${replaced.name}")` : ''}` : 'an unreadable identity'} in ${dataDir}` +
        (replaced.agentId
          ? `; revoke the old agent on its coordinator: POST /v1/agents/${replaced.agentId}/revoke\n`
          : '\n'),
    );
  }
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({
        agentId: identity.agentId,
        name: identity.name,
        agentUrl: identity.agentUrl,
        ...(replaced ? { replaced: { agentId: replaced.agentId ?? null, name: replaced.name ?? null } } : {}),
      })}\n`,
    );
  } else {
    process.stdout.write(
      `Enrolled as ${identity.agentId} (${identity.name}); certificate valid, CA pinned.\n` +
        `Start it with: loom agent start --data-dir ${stringFlag(flags, 'data-dir')} --data PATH\n`,
    );
  }
  return 0;
}

/** `--csv-separator`: one character, or a word for the ones a shell makes awkward. */
export function csvSeparatorFlag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const words: Record<string, string> = { tab: '\t', '\\t': '\t', semicolon: ';', comma: ',', pipe: '|' };
  const sep = words[value.toLowerCase()] ?? value;
  if ([...sep].length !== 1) {
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      '--csv-separator must be one character (such as ";" or "|") or the word tab',
    );
  }
  return sep;
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
  const dataKey = await agentDataKey(flags);
  const labelsPath = stringFlag(flags, 'labels');
  const separator = csvSeparatorFlag(stringFlag(flags, 'csv-separator'));
  const agent = new EdgeAgent({
    ...(dataKey ? { dataKey } : {}),
    dataDir: stringFlag(flags, 'data-dir')!,
    dataPath: stringFlag(flags, 'data')!,
    ...(format ? { format: format as 'idx' | 'csv' | 'jsonl' } : {}),
    ...(labelColumn ? { labelColumn } : {}),
    ...(labelsPath ? { labelsPath } : {}),
    ...(separator ? { csvSeparator: separator } : {}),
    inferenceHost: stringFlag(flags, 'inference-host') ?? '127.0.0.1',
    inferencePort: intFlag(flags, 'inference-port', 8501),
    // Edge serving: revocation policy, API keys and TLS of the inference API.
    ...(flags['serve-when-revoked'] ? { serveWhenRevoked: true } : {}),
    ...(flags['require-api-key'] ? { requireApiKey: true } : {}),
    ...(tlsCert && tlsKey ? { inferenceTls: { certPath: tlsCert, keyPath: tlsKey } } : {}),
    healthIntervalMs: intFlag(flags, 'health-interval', 10, 1, 86_400) * 1000,
    keepVersions: intFlag(flags, 'keep-versions', 3, 1, 1000),
    trainingThreads: intFlag(flags, 'threads', DEFAULT_TRAINING_THREADS, 1, 1024),
    ...(flags['grpc-port'] === undefined ? {} : { grpcPort: intFlag(flags, 'grpc-port', 0) }),
    inferenceBatching: {
      maxBatchSize: intFlag(flags, 'max-batch-size', BATCHING_DEFAULTS.maxBatchSize, 1, 4096),
      maxQueueDelayMs: intFlag(flags, 'max-queue-delay-ms', BATCHING_DEFAULTS.maxQueueDelayMs, 0, 60_000),
    },
    log,
  });
  try {
    await agent.start();
  } catch (err) {
    // Whatever started (the model store, say) is closed, so the process exits with its one line.
    await agent.stop().catch(() => undefined);
    throw err;
  }
  // Listening before the ready line goes out: a supervisor may send SIGTERM the moment it reads it.
  const stopSignal = waitForShutdownSignal();
  if (flags.json) {
    const s = agent.status();
    process.stdout.write(
      `${JSON.stringify({ agentId: s.agentId, name: s.name, inferenceUrl: s.inferenceUrl, ...(s.grpcAddress ? { grpcAddress: s.grpcAddress } : {}), examples: s.examples, backend: s.backend, trainingPath: s.trainingPath, trainingThreads: s.trainingThreads })}\n`,
    );
  }
  const signal = await stopSignal;
  log.info('shutting down', { signal });
  await agent.stop();
  return 0;
}

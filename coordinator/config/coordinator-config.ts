// The coordinator's one config type: defaults in one place, merged once (flags > LOOM_*
// environment > <dataDir>/coordinator.json > defaults), checked once, unknown keys refused.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LoomError } from '../../shared/errors/index.ts';
import {
  DEFAULT_CHUNK_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_PAYLOAD_BYTES,
  FieldReader,
} from '../../shared/protocol/index.ts';
import { ENGINE_NAMES, type EngineName } from '../aggregation/index.ts';

export interface CoordinatorConfig {
  dataDir: string;
  /** Address both servers bind to. */
  host: string;
  /** Operator API port (HTTPS); 0 picks a free port. */
  apiPort: number;
  /** Agent gateway port (WSS with client certificates); 0 picks a free port. */
  agentPort: number;
  /** Names and addresses in the server certificate (set at init). */
  hosts: string[];
  heartbeatIntervalMs: number;
  /** Lifetime of agent client certificates. */
  agentCertValiditySec: number;
  /** Lifetime of enrollment tokens unless the request says otherwise. */
  enrollmentTokenTtlSec: number;
  /** Aggregation engine for jobs that do not choose one. */
  engine: EngineName;
  logFormat: 'text' | 'json';
  /** Largest WebSocket frame accepted from an agent. */
  maxFrameBytes: number;
  /** Payloads (model weights, updates) larger than this travel in chunks of this size. */
  chunkBytes: number;
  /**
   * Largest model weights a task or an update may carry, chunked: a model whose weights are
   * larger is refused when it is created.
   */
  maxPayloadBytes: number;
  /** `POST /v1/enroll` requests allowed per client address per minute (0 turns the limit off). */
  enrollRatePerMinute: number;
  /** How often running rollouts are judged (waves started, health checked), in ms. */
  rolloutTickMs: number;
  /** Key file of the data key that encrypts weights at rest (default: <dataDir>/data.key). */
  dataKeyFile?: string;
  /** A command that prints the data key (base64), e.g. a KMS client; used instead of the key file. */
  dataKeyCommand?: string;
  /** File whose first line is the passphrase of a CA key encrypted at init ($LOOM_CA_PASSPHRASE wins). */
  caPassphraseFile?: string;
}

export const COORDINATOR_DEFAULTS: Omit<CoordinatorConfig, 'dataDir'> = Object.freeze({
  host: '0.0.0.0',
  apiPort: 8443,
  agentPort: 8444,
  hosts: ['localhost', '127.0.0.1', '::1'],
  heartbeatIntervalMs: 10_000,
  agentCertValiditySec: 30 * 86_400,
  enrollmentTokenTtlSec: 3_600,
  engine: 'typed-array' as EngineName,
  logFormat: 'text' as const,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  chunkBytes: DEFAULT_CHUNK_BYTES,
  maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
  enrollRatePerMinute: 20,
  rolloutTickMs: 500,
});

const KEYS = Object.keys(COORDINATOR_DEFAULTS) as (keyof typeof COORDINATOR_DEFAULTS)[];

const ENV: Record<string, keyof typeof COORDINATOR_DEFAULTS | (typeof OPTIONAL_KEYS)[number]> = {
  LOOM_HOST: 'host',
  LOOM_API_PORT: 'apiPort',
  LOOM_AGENT_PORT: 'agentPort',
  LOOM_HEARTBEAT_INTERVAL_MS: 'heartbeatIntervalMs',
  LOOM_AGENT_CERT_VALIDITY_SEC: 'agentCertValiditySec',
  LOOM_ENROLLMENT_TOKEN_TTL_SEC: 'enrollmentTokenTtlSec',
  LOOM_ENGINE: 'engine',
  LOOM_LOG_FORMAT: 'logFormat',
  LOOM_MAX_FRAME_BYTES: 'maxFrameBytes',
  LOOM_CHUNK_BYTES: 'chunkBytes',
  LOOM_MAX_PAYLOAD_BYTES: 'maxPayloadBytes',
  LOOM_ENROLL_RATE_PER_MINUTE: 'enrollRatePerMinute',
  LOOM_ROLLOUT_TICK_MS: 'rolloutTickMs',
  LOOM_DATA_KEY_FILE: 'dataKeyFile',
  LOOM_DATA_KEY_COMMAND: 'dataKeyCommand',
  LOOM_CA_PASSPHRASE_FILE: 'caPassphraseFile',
};

/** Settings without a default value (absent unless set). */
const OPTIONAL_KEYS = ['dataKeyFile', 'dataKeyCommand', 'caPassphraseFile'] as const;

export const CONFIG_FILE = 'coordinator.json';

function validate(raw: Record<string, unknown>, source: string): Partial<CoordinatorConfig> {
  const r = FieldReader.of(raw, '', 'LOOM_ERR_INVALID_CONFIG');
  const known: string[] = [...KEYS, ...OPTIONAL_KEYS];
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) {
      throw new LoomError(
        'LOOM_ERR_INVALID_CONFIG',
        `${source}: unknown setting "${key}" (known: ${known.join(', ')})`,
      );
    }
  }
  const out: Partial<CoordinatorConfig> = {};
  try {
    if (r.has('host')) out.host = r.string('host', { max: 255 });
    if (r.has('apiPort')) out.apiPort = r.integer('apiPort', { min: 0, max: 65_535 });
    if (r.has('agentPort')) out.agentPort = r.integer('agentPort', { min: 0, max: 65_535 });
    if (r.has('hosts')) out.hosts = r.stringArray('hosts', { max: 64 });
    if (r.has('heartbeatIntervalMs')) {
      out.heartbeatIntervalMs = r.integer('heartbeatIntervalMs', { min: 50, max: 3_600_000 });
    }
    if (r.has('enrollRatePerMinute')) {
      out.enrollRatePerMinute = r.integer('enrollRatePerMinute', { min: 0, max: 1_000_000 });
    }
    if (r.has('rolloutTickMs')) out.rolloutTickMs = r.integer('rolloutTickMs', { min: 10, max: 60_000 });
    if (r.has('maxFrameBytes'))
      out.maxFrameBytes = r.integer('maxFrameBytes', { min: 1024, max: 2 ** 31 - 1 });
    if (r.has('chunkBytes'))
      out.chunkBytes = r.integer('chunkBytes', { min: 64 * 1024, max: 32 * 1024 * 1024 });
    if (r.has('maxPayloadBytes'))
      out.maxPayloadBytes = r.integer('maxPayloadBytes', { min: 1024, max: 1536 * 1024 * 1024 });
    if (r.has('agentCertValiditySec'))
      out.agentCertValiditySec = r.integer('agentCertValiditySec', { min: 60 });
    if (r.has('enrollmentTokenTtlSec'))
      out.enrollmentTokenTtlSec = r.integer('enrollmentTokenTtlSec', { min: 1 });
    if (r.has('engine')) {
      const engine = r.string('engine');
      if (!ENGINE_NAMES.includes(engine as EngineName))
        r.fail('engine', `must be one of ${ENGINE_NAMES.join(', ')}`);
      out.engine = engine as EngineName;
    }
    if (r.has('dataKeyFile')) out.dataKeyFile = r.string('dataKeyFile', { max: 4096 });
    if (r.has('dataKeyCommand')) out.dataKeyCommand = r.string('dataKeyCommand', { max: 4096 });
    if (r.has('caPassphraseFile')) out.caPassphraseFile = r.string('caPassphraseFile', { max: 4096 });
    if (r.has('logFormat')) {
      const f = r.string('logFormat');
      if (f !== 'text' && f !== 'json') r.fail('logFormat', 'must be text or json');
      out.logFormat = f as 'text' | 'json';
    }
  } catch (err) {
    throw new LoomError('LOOM_ERR_INVALID_CONFIG', `${source}: ${(err as Error).message}`, { cause: err });
  }
  return out;
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    out[key] = typeof (COORDINATOR_DEFAULTS as Record<string, unknown>)[key] === 'number' ? Number(v) : v;
  }
  return out;
}

/** Reads `<dataDir>/coordinator.json` (absent → empty). */
export async function readConfigFile(dataDir: string): Promise<Record<string, unknown>> {
  const path = join(dataDir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new LoomError('LOOM_ERR_INVALID_CONFIG', `cannot read ${path}`, { cause: err });
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new LoomError('LOOM_ERR_INVALID_CONFIG', `${path} is not a JSON object`, { cause: err });
  }
}

/**
 * The effective config: `flags` over `LOOM_*` environment over the config file over defaults.
 * Throws LOOM_ERR_INVALID_CONFIG naming the source and key of the first bad value.
 */
export async function resolveCoordinatorConfig(
  dataDir: string,
  flags: Partial<Omit<CoordinatorConfig, 'dataDir'>> = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<CoordinatorConfig> {
  const file = validate(await readConfigFile(dataDir), join(dataDir, CONFIG_FILE));
  const fromEnvironment = validate(fromEnv(env), 'environment');
  const cleanFlags = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const fromFlags = validate(cleanFlags, 'command line');
  const config = Object.freeze({
    ...COORDINATOR_DEFAULTS,
    ...file,
    ...fromEnvironment,
    ...fromFlags,
    dataDir,
  });
  // A chunk must fit in a frame with room for its envelope.
  if (config.chunkBytes + 64 * 1024 > config.maxFrameBytes) {
    throw new LoomError(
      'LOOM_ERR_INVALID_CONFIG',
      `chunkBytes (${config.chunkBytes}) must be at least 64 KiB smaller than maxFrameBytes (${config.maxFrameBytes})`,
    );
  }
  return config;
}

// The protocol's message types and their bodies. Agent identity is never in a body: the
// coordinator takes it from the client certificate.
import type { ModelArchitecture } from '../models/index.ts';

/** Protocol versions this build speaks, newest first. */
export const PROTOCOL_VERSIONS: readonly number[] = [2];

/** Largest WebSocket frame either side accepts unless configured otherwise (64 MiB: ~16M float32 parameters). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** WebSocket close codes Loom uses (4000–4999 is the application range). */
export const CLOSE_CODES = {
  /** A frame could not be decoded or failed validation. */
  MALFORMED_FRAME: 4000,
  /** `hello` offered no protocol version this side speaks. */
  UNSUPPORTED_VERSION: 4001,
  /** The agent's certificate or identity was revoked. */
  REVOKED: 4003,
  /** Heartbeats stopped arriving. */
  HEARTBEAT_TIMEOUT: 4004,
  /** A newer connection from the same agent took over. */
  REPLACED: 4005,
  /** The first frame was not `hello`, or `hello` came twice. */
  HANDSHAKE: 4006,
  /** The coordinator is shutting down. */
  GOING_AWAY: 1001,
} as const;

export interface ModelRef {
  name: string;
  version: number;
  architecture: ModelArchitecture;
}

/** The hold-out split every agent makes of its local data, unless a model says otherwise. */
export const HOLDOUT_DEFAULTS = {
  /** Share of the local examples held out for evaluation. */
  fraction: 0.1,
  /** Largest share a model may hold out. */
  maxFraction: 0.5,
} as const;

/** How many of `examples` local examples a hold-out share of `fraction` holds out (both sides agree on it). */
export function holdoutCount(examples: number, fraction: number): number {
  return Math.min(examples, Math.round(examples * fraction));
}

/** Most classes an evaluation's confusion matrix may have (classes × classes counts). */
export const MAX_EVALUATION_CLASSES = 1024;

export interface TrainHyperParameters {
  epochs: number;
  batchSize: number;
  learningRate: number;
}

/** Most labels and feature groups a dataset summary may carry. */
export const SUMMARY_LIMITS = { labels: 1024, featureGroups: 1024 } as const;

/**
 * Per-feature statistics over every example. Group `i` covers the flat feature indices
 * `[i * groupSize, min((i + 1) * groupSize, features))`; with 1024 features or fewer each group
 * is one feature. Only finite values count; a group with none has min = max = mean = 0.
 */
export interface FeatureStats {
  groupSize: number;
  groups: number;
  min: number[];
  max: number[];
  mean: number[];
}

/**
 * What an agent tells the coordinator about its local data: aggregate statistics only, never a
 * sample. The example count is what its training weight is checked against; the rest lets the
 * coordinator spot a site whose data looks unlike the others' (scaled differently, say).
 */
export interface DatasetSummary {
  examples: number;
  featureShape: number[];
  /** Features per example (the product of featureShape). */
  features: number;
  /** Examples per label, smallest label first, for at most 1024 distinct labels. */
  labels: { value: number; count: number }[];
  /** Labels past the first 1024 distinct ones: how many distinct values, how many examples. */
  otherLabels: { distinct: number; examples: number };
  /** Feature values that are NaN or ±Infinity (left out of featureStats). */
  nonFiniteValues: number;
  /** Null when the dataset has too few examples for statistics that would not give samples away. */
  featureStats: FeatureStats | null;
}

export interface HelloBody {
  /** Versions the agent speaks, newest first. */
  protocolVersions: number[];
  agentVersion: string;
  /** TensorFlow.js backend the agent trains on. */
  backend: string;
  /** Model versions the agent already holds, so the coordinator does not resend them. */
  models: { name: string; version: number }[];
  /** Its local training data, summarised. */
  dataset: DatasetSummary;
  /** Node.js version the agent runs on (`v20.11.1`). Absent from older agents. */
  runtime?: string;
  /** How it trains: `tfjs-<backend>` (`tfjs-wasm`, `tfjs-tensorflow`, `tfjs-cpu`). Absent from older agents. */
  training?: string;
  /**
   * SHA-256 (hex) of the canonical manifest of its local data: file names and sizes, example count,
   * feature shape, label histogram and hold-out split seed. Computed once at start; never the data.
   * Absent from older agents.
   */
  dataFingerprint?: string;
  /**
   * Payloads (model weights) it received part of before its last connection dropped, with a
   * bitmap of the chunks it holds: the coordinator sends only the rest. Absent when none.
   */
  partial?: { payload: string; count: number; have: Uint8Array }[];
  /** Versions its local store holds (for rollbacks without a download). Absent when none. */
  stored?: { name: string; version: number }[];
}

export interface WelcomeBody {
  protocolVersion: number;
  agentId: string;
  heartbeatIntervalMs: number;
  /** Largest chunk the coordinator wants for payloads an agent sends (larger ones are chunked). */
  chunkBytes: number;
}

/**
 * One piece of a payload too large for one frame (see payloads.ts). The message that uses the
 * payload follows its chunks and names it by `payload`, the SHA-256 of the whole.
 */
export interface ChunkBody {
  /** SHA-256 (hex) of the whole payload: its name. */
  payload: string;
  /** 0-based position of this chunk. */
  index: number;
  /** Number of chunks of the payload. */
  count: number;
  /** Bytes of the whole payload. */
  size: number;
  /** SHA-256 (hex) of this chunk's bytes. */
  sha256: string;
  bytes: Uint8Array;
}

export interface TrainBody {
  taskId: string;
  jobId: string;
  round: number;
  model: ModelRef;
  hyper: TrainHyperParameters;
  /** The global weights, msgpack-encoded WireTensor[] (encoded once per round, shared by all sends). */
  weights: Uint8Array;
  /**
   * Share of the agent's local data held out for evaluation and never trained on (0 to 0.5).
   * Absent: HOLDOUT_DEFAULTS.fraction. Agents that predate it ignore it.
   */
  holdoutFraction?: number;
}

/** Coordinator → agent: evaluate a model version on the local hold-out split. */
export interface EvaluateBody {
  taskId: string;
  /** The federated evaluation this task belongs to. */
  evaluationId: string;
  model: ModelRef;
  /** The version's weights, msgpack-encoded WireTensor[] (shared by every send). */
  weights: Uint8Array;
  /** Share of the local data held out (the same split training leaves out), 0 to 0.5. */
  holdoutFraction: number;
}

/** Agent → coordinator: how the version did on the hold-out split. Checked, never trusted. */
export interface EvaluateResultBody {
  taskId: string;
  evaluationId: string;
  /** Hold-out examples evaluated. */
  numExamples: number;
  /** Mean categorical cross-entropy over them. */
  loss: number;
  /** Share predicted right (the trace of `confusion` over numExamples). */
  accuracy: number;
  /** `confusion[t][p]`: examples of true class t predicted as class p; classes × classes. */
  confusion: number[][];
  /** Milliseconds the agent spent evaluating. */
  evalMs: number;
}

export interface TrainResultBody {
  taskId: string;
  jobId: string;
  round: number;
  numExamples: number;
  metrics: Record<string, number>;
  /** Local weights minus the global weights, msgpack-encoded WireTensor[]. */
  update: Uint8Array;
  /** Milliseconds the agent spent training (for the coordinator-overhead split). */
  trainMs: number;
}

export interface TaskErrorBody {
  taskId: string;
  code: string;
  message: string;
  /**
   * True when asking again cannot help (the local data cannot serve this model): the
   * coordinator stops sampling the agent for the job.
   */
  permanent?: boolean;
}

export interface CancelBody {
  taskId: string;
}

export interface DeployBody {
  model: ModelRef;
  /** msgpack-encoded WireTensor[] */
  weights: Uint8Array;
  /** SHA-256 hex of `weights`. */
  sha256: string;
  /** Coordinator's signature over the deployment manifest (model, version, architecture, sha256). */
  signature: Uint8Array;
  /** PEM of the certificate whose key made `signature`; must chain to the pinned CA. */
  signerCertificate: string;
}

/**
 * Coordinator → agent: serve a version the agent already stores (a rollback, say), signed as a
 * deployment of it would be: the agent checks its stored copy against `sha256` and the signature.
 * Answered with `deploy-ack`; refused when the store does not hold it, and then sent as a deploy.
 */
export interface ActivateBody {
  model: ModelRef;
  /** SHA-256 hex of the version's weights as a `deploy` would carry them. */
  sha256: string;
  signature: Uint8Array;
  signerCertificate: string;
}

export interface DeployAckBody {
  name: string;
  version: number;
  ok: boolean;
  error?: string;
}

/**
 * Upper bounds (ms) of the latency buckets of a serving-health report; a report has one count
 * per bucket and one more for requests slower than the last bound. Fixed, so reports of every
 * agent add up bucket by bucket.
 */
export const HEALTH_LATENCY_BUCKETS_MS: readonly number[] = [
  1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000,
];

/** Largest count one serving-health entry may carry (per interval). */
export const MAX_HEALTH_COUNT = 1_000_000_000;

/** Most versions one serving-health report may name. */
export const MAX_HEALTH_VERSIONS = 256;

/** How one model version served inference requests during one report interval. */
export interface VersionHealth {
  name: string;
  version: number;
  /** Predictions answered or failed by this version in the interval. */
  requests: number;
  /** Of those, the ones that failed on the server side (the version's fault, not the caller's). */
  errors: number;
  /** Requests per latency bucket (HEALTH_LATENCY_BUCKETS_MS, plus one above the last); they sum to `requests`. */
  latency: number[];
}

/** Agent → coordinator, every health interval: serving health per model version since the last report. */
export interface ServingHealthBody {
  /** Milliseconds the report covers. */
  intervalMs: number;
  versions: VersionHealth[];
}

/**
 * Coordinator → agent: a model version is retired in favour of `successor`. Until `sunsetAt` an
 * inference call naming it still works with deprecation headers; after that it answers 410.
 */
export interface RetirementBody {
  name: string;
  version: number;
  successor: number;
  /** ISO 8601: when it was retired. */
  deprecatedAt: string;
  /** ISO 8601: the end of the grace period. */
  sunsetAt: string;
}

/** Agent → coordinator over the mTLS channel: a CSR for a fresh key, before the current cert expires. */
export interface RenewBody {
  csr: string;
}

/** Coordinator → agent, in reply to `renew`. */
export interface RenewedBody {
  certificate: string;
  notAfter: string;
}

export interface ErrorBody {
  code: string;
  message: string;
}

export interface MessageBodies {
  hello: HelloBody;
  welcome: WelcomeBody;
  train: TrainBody;
  'train-result': TrainResultBody;
  evaluate: EvaluateBody;
  'evaluate-result': EvaluateResultBody;
  'task-error': TaskErrorBody;
  cancel: CancelBody;
  deploy: DeployBody;
  'deploy-ack': DeployAckBody;
  activate: ActivateBody;
  renew: RenewBody;
  renewed: RenewedBody;
  chunk: ChunkBody;
  'serving-health': ServingHealthBody;
  retirement: RetirementBody;
  error: ErrorBody;
}

export type MessageType = keyof MessageBodies;

export const MESSAGE_TYPES: readonly MessageType[] = [
  'hello',
  'welcome',
  'train',
  'train-result',
  'evaluate',
  'evaluate-result',
  'task-error',
  'cancel',
  'deploy',
  'deploy-ack',
  'activate',
  'renew',
  'renewed',
  'chunk',
  'serving-health',
  'retirement',
  'error',
];

/** One protocol frame. */
export type Message = {
  [T in MessageType]: { type: T; id: string; replyTo?: string; body: MessageBodies[T] };
}[MessageType];

export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

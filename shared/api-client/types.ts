// The operator API's JSON as the client sees it. Where the coordinator has a type for what a route
// returns, that type is used here (type-only imports through the coordinator's public doors, erased
// at runtime, so nothing of the coordinator is loaded by the client); where a route builds its answer
// inline, the shape is written here and checked against a real coordinator by the client's tests.
import type { RevocationListJSON } from '../../certs/index.ts';
import type { AuditEntry, AuditVerification } from '../../coordinator/audit/index.ts';
import type { Role } from '../../coordinator/directory/index.ts';
import type {
  EvaluationMatrix,
  EvaluationRecord,
  EvaluationRequest,
} from '../../coordinator/evaluations/index.ts';
import type {
  Experiment,
  ExperimentAgent,
  JobConfig,
  JobEvent,
  JobState,
  JobView,
  RoundRecord,
} from '../../coordinator/jobs/index.ts';
import type {
  AliasRecord,
  LifecycleView,
  PromotionPolicy,
  Stage,
  StageChangeView,
} from '../../coordinator/lifecycle/index.ts';
import type { ModelRecord, VersionRecord } from '../../coordinator/registry/index.ts';
import type {
  RetirementRecord,
  RolloutPlan,
  RolloutPolicy,
  RolloutTarget,
  RolloutView,
} from '../../coordinator/rollouts/index.ts';
import type { RoundProgress } from '../../coordinator/rounds/index.ts';
import type { ModelArchitecture, TfjsModelJson } from '../models/index.ts';

export type {
  AliasRecord,
  AuditEntry,
  AuditVerification,
  EvaluationMatrix,
  EvaluationRecord,
  Experiment,
  ExperimentAgent,
  JobConfig,
  JobEvent,
  JobState,
  JobView,
  LifecycleView,
  ModelArchitecture,
  ModelRecord,
  PromotionPolicy,
  RetirementRecord,
  RevocationListJSON,
  Role,
  RolloutPlan,
  RolloutPolicy,
  RolloutTarget,
  RolloutView,
  RoundProgress,
  RoundRecord,
  Stage,
  StageChangeView,
  TfjsModelJson,
  VersionRecord,
};

/** A job as `GET /v1/jobs` lists it: the record without its rounds. */
export type JobSummary = Omit<JobView, 'rounds' | 'roundInProgress'>;

/** The body of `POST /v1/jobs`: `model` and any job option (the server fills in the defaults). */
export type JobRequest = { model: string } & Partial<Omit<JobConfig, 'model'>>;

/** `GET /healthz`. */
export interface Health {
  status: string;
  backend: string;
  agentsConnected: number;
  agentPort: number;
}

/** `GET /v1/ca`: the CA certificate, for pinning by its fingerprint. */
export interface CaInfo {
  caCertificate: string;
  fingerprint: string;
}

/** `POST /v1/enrollment-tokens`. */
export interface EnrollmentToken {
  token: string;
  expiresAt: string;
}

/** An agent as `GET /v1/agents` and `GET /v1/agents/:id` show it. */
export interface AgentView {
  id: string;
  name: string;
  online: boolean;
  lastSeen: string | null;
  connectedAt: string | null;
  remoteAddress: string | null;
  backend: string | null;
  agentVersion: string | null;
  examples: number | null;
  revoked: boolean;
  revokedAt: string | null;
  enrolledAt: string;
  certNotAfter: string;
  /** Model name to the version the agent acknowledged. */
  models: Record<string, number>;
  /** Labels given at enrollment or by an operator (`site`, `region`, ...). */
  labels: Record<string, string>;
}

/** `POST /v1/agents/:id/revoke`: the agent, and whether it was connected and cut off. */
export interface RevokedAgent extends AgentView {
  disconnected: boolean;
}

/** `GET /v1/models/:name`: the model and the version deployed to the agents, if any. */
export interface ModelDetail extends ModelRecord {
  deployedVersion: number | null;
}

/** `POST /v1/models`: the new model with its version 1. */
export interface CreatedModel extends ModelRecord {
  version: VersionRecord;
}

/** An architecture as `POST /v1/models` takes it: an MLP's activation may be left to its default (relu). */
export type ArchitectureRequest =
  | ModelArchitecture
  | (Omit<Extract<ModelArchitecture, { kind: 'mlp' }>, 'activation'> & { activation?: string });

/** The body of `POST /v1/models`. */
export interface ModelRequest {
  name: string;
  description?: string;
  architecture: ArchitectureRequest;
  /** Base64 of a weights.bin laid out as the tfjs topology's weightsManifest says. */
  weights?: string;
}

/** An API token as `GET /v1/tokens` shows it: never its secret. */
export interface ApiTokenView {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  revoked: boolean;
  revokedAt?: string;
}

/** `POST /v1/tokens`: the only answer that carries the token itself. */
export interface CreatedApiToken {
  id: string;
  token: string;
  role: Role;
  name: string;
}

/** `GET /v1/audit`: a page of entries and the server's check of the whole chain. */
export interface AuditPage {
  entries: AuditEntry[];
  next?: string;
  chain: AuditVerification;
}

/** One page of a list route: its items and the cursor of the next page, when there is one. */
export interface Page<T> {
  items: T[];
  next?: string;
}

/** Paging of every list route: `limit` (server default 100, at most 1000) and a cursor. */
export interface PageOptions {
  limit?: number;
  after?: string;
}

/**
 * One message of `GET /v1/jobs/:id/events`: first a `snapshot` of the job, then its events in
 * order. A `job-finished` the server writes for a job that ended before the stream has no `seq`.
 */
export type JobStreamMessage =
  | { event: 'snapshot'; data: JobView }
  | { event: JobEvent['type']; id?: number; data: JobEvent };

/** The body of `POST /v1/models/:name/versions/:version/evaluations` (server defaults fill the rest). */
export type EvaluationStartRequest = Partial<EvaluationRequest>;

/** An evaluation as `GET /v1/models/:name/evaluations` lists it: its figures without per-site detail. */
export type EvaluationSummary = Omit<EvaluationRecord, 'results' | 'failures'> & {
  sites: number;
  failures: number;
};

/** `GET /v1/models/:name/evaluations`: the cross-site matrix and one page of evaluations, newest first. */
export interface EvaluationList {
  matrix: EvaluationMatrix;
  evaluations: EvaluationSummary[];
  next?: string;
}

/**
 * The body of `POST .../versions/:version/stage`: `force` (admin only) needs a `reason`; a promotion
 * to production starts a rollout, planned by `rollout` (then the model's policy, then the defaults).
 */
export interface StageRequest {
  stage: Stage;
  force?: boolean;
  reason?: string;
  rollout?: RolloutPlan;
}

/** A version as `GET /v1/models/:name/versions/:version` shows it: the record and its lifecycle. */
export type VersionView = VersionRecord & LifecycleView;

/** The body of `POST /v1/rollouts`: model, version and target; the waves and limits default. */
export type RolloutRequest = {
  model: string;
  version: number;
  target: RolloutTarget;
  waves?: number[];
} & Partial<RolloutPolicy>;

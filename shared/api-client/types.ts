// The operator API's JSON as the client sees it. Request bodies and most answers are the types of
// the API schemas (shared/api-schemas: the coordinator validates with the same declarations and
// publishes them as its OpenAPI document). Jobs and their events keep the coordinator's own
// richer types (type-only imports through its public doors, erased at runtime, so nothing of the
// coordinator is loaded by the client).
import type { z } from 'zod';
import type { RevocationListJSON } from '../../certs/index.ts';
import type {
  Experiment,
  ExperimentAgent,
  JobConfig,
  JobEvent,
  JobState,
  JobView,
  RoundRecord,
} from '../../coordinator/jobs/index.ts';
import type { RoundProgress } from '../../coordinator/rounds/index.ts';
import type {
  AgentView as AgentViewSchema,
  AliasRecord as AliasSchema,
  AuditEntry as AuditEntrySchema,
  AuditPage as AuditPageSchema,
  AuditVerification as AuditVerificationSchema,
  CaResponse,
  CreatedModel as CreatedModelSchema,
  CreatedToken,
  EnrollmentTokenResponse,
  EvaluationBody,
  EvaluationList as EvaluationListSchema,
  EvaluationRecord as EvaluationSchema,
  HealthResponse,
  JobCreateBody,
  LifecycleView as LifecycleSchema,
  ModelCreateBody,
  ModelDetail as ModelDetailSchema,
  ModelRecord as ModelSchema,
  Policy,
  RetireBody,
  RetirementRecord as RetirementSchema,
  RevokedAgent as RevokedAgentSchema,
  ROLE_NAMES,
  RolloutBody,
  RolloutPlanBody,
  RolloutRecord as RolloutSchema,
  RolloutTarget as RolloutTargetSchema,
  STAGE_NAMES,
  StageBody,
  StageChange,
  TokenCreateBody,
  TokenView,
  VersionPatchBody,
  VersionRecord as VersionSchema,
  VersionView as VersionViewSchema,
} from '../api-schemas/index.ts';
import type { ModelArchitecture, TfjsModelJson } from '../models/index.ts';

export type {
  Experiment,
  ExperimentAgent,
  JobConfig,
  JobEvent,
  JobState,
  JobView,
  ModelArchitecture,
  RevocationListJSON,
  RoundProgress,
  RoundRecord,
  TfjsModelJson,
};

/** A role an API token has. */
export type Role = (typeof ROLE_NAMES)[number];

/** One audit entry. */
export type AuditEntry = z.output<typeof AuditEntrySchema>;
/** The server's check of the audit hash chain. */
export type AuditVerification = z.output<typeof AuditVerificationSchema>;

/** A model as the registry keeps it. */
export type ModelRecord = z.output<typeof ModelSchema>;
/** One immutable version of a model and its lineage. */
export type VersionRecord = z.output<typeof VersionSchema>;

/** A job as `GET /v1/jobs` lists it: the record without its rounds. */
export type JobSummary = Omit<JobView, 'rounds' | 'roundInProgress'>;

/** The body of `POST /v1/jobs`: `model` and any job option (the server fills in the defaults). */
export type JobRequest = z.input<typeof JobCreateBody>;

/** `GET /healthz`. */
export type Health = z.output<typeof HealthResponse>;

/** `GET /v1/ca`: the CA certificate, for pinning by its fingerprint. */
export type CaInfo = z.output<typeof CaResponse>;

/** `POST /v1/enrollment-tokens`. */
export type EnrollmentToken = z.output<typeof EnrollmentTokenResponse>;

/** An agent as `GET /v1/agents` and `GET /v1/agents/:id` show it. */
export type AgentView = z.output<typeof AgentViewSchema>;

/** `POST /v1/agents/:id/revoke`: the agent, and whether it was connected and cut off. */
export type RevokedAgent = z.output<typeof RevokedAgentSchema>;

/** `GET /v1/models/:name`: the model and the version deployed to the agents, if any. */
export type ModelDetail = z.output<typeof ModelDetailSchema>;

/** `POST /v1/models`: the new model with its version 1. */
export type CreatedModel = z.output<typeof CreatedModelSchema>;

/** An architecture as `POST /v1/models` takes it: an MLP's activation may be left to its default (relu). */
export type ArchitectureRequest =
  | ModelArchitecture
  | (Omit<Extract<ModelArchitecture, { kind: 'mlp' }>, 'activation'> & { activation?: string });

/** The body of `POST /v1/models`. */
export type ModelRequest = Omit<z.input<typeof ModelCreateBody>, 'architecture'> & {
  architecture: ArchitectureRequest;
};

/** The body of `POST /v1/tokens`. */
export type TokenRequest = z.input<typeof TokenCreateBody>;

/** An API token as `GET /v1/tokens` shows it: never its secret. */
export type ApiTokenView = z.output<typeof TokenView>;

/** `POST /v1/tokens`: the only answer that carries the token itself. */
export type CreatedApiToken = z.output<typeof CreatedToken>;

/** `GET /v1/audit`: a page of entries and the server's check of the whole chain. */
export type AuditPage = z.output<typeof AuditPageSchema>;

/** A version's lifecycle: stage, tags, description, and the aliases that point at it. */
export type LifecycleView = z.output<typeof LifecycleSchema>;

/** A version as `GET /v1/models/:name/versions/:version` shows it: the record and its lifecycle. */
export type VersionView = z.output<typeof VersionViewSchema>;

/** The body of `PATCH /v1/models/:name/versions/:version`: description and tags (null removes a tag). */
export type VersionPatch = z.input<typeof VersionPatchBody>;

/** The body of `POST .../versions/:version/stage`: `force` (admin only) needs a `reason`. */
export type StageRequest = z.input<typeof StageBody>;

/** What a stage change answers: the version's lifecycle after it, and the rollout a promotion started. */
export type StageChangeView = z.output<typeof StageChange>;

/** A version's stage. */
export type Stage = (typeof STAGE_NAMES)[number];

/** An alias and the version it points at. */
export type AliasRecord = z.output<typeof AliasSchema>;

/** A model's promotion policy: the validation gate in front of production. */
export type PromotionPolicy = z.output<typeof Policy>;

/** The body of `POST .../versions/:version/retire`. */
export type RetireRequest = z.input<typeof RetireBody>;

/** A retired version, its successor and its grace period. */
export type RetirementRecord = z.output<typeof RetirementSchema>;

/** The body of `POST /v1/models/:name/versions/:version/evaluations` (server defaults fill the rest). */
export type EvaluationStartRequest = z.input<typeof EvaluationBody>;

/** A federated evaluation with its per-site results and aggregate. */
export type EvaluationRecord = z.output<typeof EvaluationSchema>;

/** `GET /v1/models/:name/evaluations`: the cross-site matrix and one page of evaluations, newest first. */
export type EvaluationList = z.output<typeof EvaluationListSchema>;

/** The body of `POST /v1/rollouts`: model, version and target; the waves and limits default. */
export type RolloutRequest = z.input<typeof RolloutBody>;

/** A rollout: each wave and each agent's state. */
export type RolloutView = z.output<typeof RolloutSchema>;

/** Which agents a rollout reaches: all, those carrying every label, or the named ones. */
export type RolloutTarget = z.input<typeof RolloutTargetSchema>;

/** A rollout's health limits. */
export type RolloutPolicy = RolloutView['policy'];

/** How a promotion rolls out (in the promotion, a job or the policy); fields left out default. */
export type RolloutPlan = z.input<typeof RolloutPlanBody>;

/** `GET /v1/openapi.json`: the API as an OpenAPI 3.1 document. */
export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, unknown>>;
  components: Record<string, unknown>;
  [key: string]: unknown;
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

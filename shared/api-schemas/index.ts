// Public door of shared/api-schemas: the schemas of every operator API request and answer. The
// coordinator validates with them and publishes them as its OpenAPI document; the client takes
// its types from them.
export {
  AgentList,
  AgentView,
  EnrollBody,
  EnrollmentTokenBody,
  EnrollmentTokenResponse,
  EnrollResponse,
  LabelsPatchBody,
  LabelsPutBody,
  labelsInput,
  RevokedAgent,
} from './agents.ts';
export { AuditEntry, AuditPage, AuditVerification } from './audit.ts';
export type { FilterSpec } from './common.ts';
export {
  ErrorResponse,
  IdParams,
  LIST_DEFAULTS,
  listQuery,
  ModelParams,
  VersionParams,
  VersionRefParams,
  versionOf,
} from './common.ts';
export {
  EVALUATION_STATE_NAMES,
  EvaluationBody,
  EvaluationList,
  EvaluationRecord,
  evaluationListFilters,
} from './evaluations.ts';
export {
  bool,
  checkedBy,
  finite,
  integer,
  oneOf,
  parseBody,
  parseWith,
  schemaError,
  strictBody,
  text,
  withoutNulls,
} from './fields.ts';
export {
  ENGINE_NAME_VALUES,
  JOB_STATE_NAMES,
  JobConfig,
  JobCreateBody,
  JobList,
  JobSummary,
  JobView,
  jobListFilters,
} from './jobs.ts';
export {
  AliasBody,
  AliasList,
  AliasParams,
  AliasRecord,
  Policy,
  PolicyBody,
  PolicyResponse,
  StageBody,
  StageChange,
  VersionPatchBody,
} from './lifecycle.ts';
export {
  Architecture,
  CreatedModel,
  LifecycleView,
  ModelCreateBody,
  ModelDetail,
  ModelJson,
  ModelList,
  ModelRecord,
  STAGE_NAMES,
  VersionList,
  VersionRecord,
  VersionView,
  versionListFilters,
} from './models.ts';
export {
  EmptyBody,
  RetireBody,
  RetirementList,
  RetirementRecord,
  ROLLOUT_STATE_NAMES,
  RolloutBody,
  RolloutList,
  RolloutPlanBody,
  RolloutRecord,
  RolloutTarget,
  rolloutListFilters,
  Waves,
} from './rollouts.ts';
export { CaResponse, HealthResponse, OpenApiResponse, RevocationsResponse } from './service.ts';
export { CreatedToken, ROLE_NAMES, RoleSchema, TokenCreateBody, TokenList, TokenView } from './tokens.ts';

// Public door of shared/api-client: the typed client of the coordinator's operator API.

export type { CallOptions } from './client.ts';
export { LoomClient } from './client.ts';
export type { ConnectionOptions, ResolvedConnection } from './connection.ts';
export {
  CONNECTION_DEFAULTS,
  CONNECTION_ENV,
  caFingerprintOf,
  normalizeCaFingerprint,
  pinnedCa,
  resolveConnection,
} from './connection.ts';
export { errorFromResponse } from './errors.ts';
export type { JobEventStreamOptions, ServerSentEvent } from './event-stream.ts';
export { JOB_EVENT_STREAM_DEFAULTS, parseServerSentEvents } from './event-stream.ts';
export type {
  AgentView,
  ApiTokenView,
  ArchitectureRequest,
  AuditEntry,
  AuditPage,
  AuditVerification,
  CaInfo,
  CreatedApiToken,
  CreatedModel,
  EnrollmentToken,
  Experiment,
  ExperimentAgent,
  Health,
  JobConfig,
  JobEvent,
  JobRequest,
  JobState,
  JobStreamMessage,
  JobSummary,
  JobView,
  ModelArchitecture,
  ModelDetail,
  ModelRecord,
  ModelRequest,
  Page,
  PageOptions,
  RevocationListJSON,
  RevokedAgent,
  Role,
  RoundProgress,
  RoundRecord,
  TfjsModelJson,
  VersionRecord,
} from './types.ts';

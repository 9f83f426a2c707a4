// Public door of coordinator/jobs.

export { dataMismatches, SCALE_RATIO_LIMIT } from './data-check.ts';
export type {
  ClaimSpan,
  Experiment,
  ExperimentAgent,
  ExperimentHyperParameters,
  ExperimentRound,
} from './experiment.ts';
export { MAX_CLAIM_SPANS, recordExperimentRound } from './experiment.ts';
export type {
  JobConfig,
  JobEvaluation,
  JobPromotion,
  JobRecord,
  JobState,
  JobView,
  JobWarning,
  RoundRecord,
} from './job-record.ts';
export { JOB_DEFAULTS, jobConfigOf, parseJobConfig } from './job-record.ts';
export type { JobEvaluator, JobEvent, JobEvents, JobPromoter, JobServiceOptions } from './job-service.ts';
export { JobService, targetClients } from './job-service.ts';
export type { JobQuery, JobStore } from './job-store.ts';
export { createLevelJobStore } from './job-store.ts';

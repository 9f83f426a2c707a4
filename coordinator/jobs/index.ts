// Public door of coordinator/jobs.

export type { JobConfig, JobRecord, JobState, RoundRecord } from './job-record.ts';
export { JOB_DEFAULTS, parseJobConfig } from './job-record.ts';
export type { JobEvents, JobServiceOptions } from './job-service.ts';
export { JobService, targetClients } from './job-service.ts';
export type { JobStore } from './job-store.ts';
export { createLevelJobStore } from './job-store.ts';

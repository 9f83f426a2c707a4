// Job records in LevelDB (one JSON value per job, rewritten whole so each write is atomic).
import { LoomError } from '../../shared/errors/index.ts';
import { type CoordinatorDb, jsonSublevel, SUBLEVEL, withStoreErrors } from '../store/index.ts';
import type { JobRecord } from './job-record.ts';

export interface JobStore {
  put(job: JobRecord): Promise<void>;
  /** Throws LOOM_ERR_NOT_FOUND. */
  get(id: string): Promise<JobRecord>;
  /** Newest first. */
  list(): Promise<JobRecord[]>;
}

export function createLevelJobStore(db: CoordinatorDb): JobStore {
  const jobs = jsonSublevel<JobRecord>(db.root, SUBLEVEL.jobs);
  return {
    put: (job) => withStoreErrors('save a job', () => jobs.put(job.id, job)),
    async get(id) {
      const job = await withStoreErrors('read a job', () => jobs.get(id));
      if (!job) throw new LoomError('LOOM_ERR_NOT_FOUND', `job ${id} does not exist`);
      return job;
    },
    async list() {
      const all = await withStoreErrors('list jobs', () => jobs.values().all());
      return all.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    },
  };
}

// Job records and their rounds in LevelDB: one JSON value per job and one per round, so a round's
// outcome and the job state it leads to are written in one durable batch.
import { LoomError } from '../../shared/errors/index.ts';
import {
  type CoordinatorDb,
  jsonSublevel,
  numericKey,
  type StoreOp,
  SUBLEVEL,
  type WriteOptions,
  withStoreErrors,
} from '../store/index.ts';
import type { JobRecord, JobState, RoundRecord } from './job-record.ts';

/** Filters and paging of `JobStore.list`. */
export interface JobQuery {
  state?: JobState;
  model?: string;
  /** Most jobs returned. Default: all. */
  limit?: number;
  /** Only jobs created before the job with this id (jobs are listed newest first). */
  after?: string;
}

export interface JobStore {
  /** Writes the job record durably, with what `options` carries along. */
  put(job: JobRecord, options?: WriteOptions): Promise<void>;
  /** Throws LOOM_ERR_NOT_FOUND. */
  get(id: string): Promise<JobRecord>;
  /** Newest first. */
  list(query?: JobQuery): Promise<JobRecord[]>;
  /** The job's rounds in order. */
  rounds(jobId: string): Promise<RoundRecord[]>;
  /** The writes of a round record together with the job record (to commit with a registry version). */
  roundOps(job: JobRecord, round: RoundRecord): StoreOp[];
  /** Writes a round record and the job record in one durable batch. */
  saveRound(job: JobRecord, round: RoundRecord, options?: WriteOptions): Promise<void>;
  /** Removes the job's round records after round `after` (a resumed job redoes them). */
  dropRoundsAfter(jobId: string, after: number): Promise<void>;
}

function roundKey(jobId: string, round: number): string {
  return `${jobId}/${numericKey(round)}`;
}

/** Job ids carry no '/', and padded round numbers sort below ':', so this range is one job's rounds. */
function roundRange(jobId: string): { gt: string; lt: string } {
  return { gt: `${jobId}/`, lt: `${jobId}/:` };
}

/** A stored job as the current code expects it (records from before a field existed get its default). */
function normalise(job: JobRecord): JobRecord {
  const { rounds: _inline, ...rest } = job as JobRecord & { rounds?: unknown };
  return { ...rest, excludedAgents: job.excludedAgents ?? {}, warnings: job.warnings ?? [] };
}

export function createLevelJobStore(db: CoordinatorDb): JobStore {
  const jobs = jsonSublevel<JobRecord>(db.root, SUBLEVEL.jobs);
  const rounds = jsonSublevel<RoundRecord>(db.root, SUBLEVEL.rounds);
  const jobOp = (job: JobRecord): StoreOp => ({
    type: 'put',
    sublevel: jobs,
    key: job.id,
    value: normalise(job),
  });
  const commit = async (ops: StoreOp[], options: WriteOptions = {}): Promise<void> => {
    const { alongside = [], ...rest } = options;
    await db.commit([...ops, ...alongside], rest);
  };

  return {
    put: (job, options) => withStoreErrors('save a job', () => commit([jobOp(job)], options)),
    async get(id) {
      const job = await withStoreErrors('read a job', () => jobs.get(id));
      if (!job)
        throw new LoomError('LOOM_ERR_NOT_FOUND', `job ${id} does not exist`, { details: { job: id } });
      return normalise(job);
    },
    async list(query = {}) {
      const all = (await withStoreErrors('list jobs', () => jobs.values().all())).map(normalise);
      const newestFirst = all.sort((a, b) =>
        a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0,
      );
      let from = 0;
      if (query.after !== undefined) {
        const at = newestFirst.findIndex((j) => j.id === query.after);
        if (at < 0) throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `after: no job ${query.after}`);
        from = at + 1;
      }
      const matching = newestFirst
        .slice(from)
        .filter(
          (j) =>
            (query.state === undefined || j.state === query.state) &&
            (query.model === undefined || j.config.model === query.model),
        );
      return query.limit === undefined ? matching : matching.slice(0, query.limit);
    },
    rounds: (jobId) => withStoreErrors('read rounds', () => rounds.values(roundRange(jobId)).all()),
    roundOps: (job, round) => [
      { type: 'put', sublevel: rounds, key: roundKey(job.id, round.round), value: round },
      jobOp(job),
    ],
    saveRound(job, round, options) {
      return withStoreErrors('save a round', () => commit(this.roundOps(job, round), options));
    },
    async dropRoundsAfter(jobId, after) {
      const keys = await withStoreErrors('read rounds', () =>
        rounds.keys({ gt: roundKey(jobId, after), lt: `${jobId}/:` }).all(),
      );
      if (keys.length === 0) return;
      await withStoreErrors('drop rounds', () =>
        commit(keys.map((key) => ({ type: 'del', sublevel: rounds, key }) as StoreOp)),
      );
    },
  };
}

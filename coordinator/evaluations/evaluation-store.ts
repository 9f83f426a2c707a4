// Evaluation records in LevelDB: one JSON value per evaluation, keyed `<model>/<id>` so one
// model's evaluations are one key range. Every state change is one durable batch.
import { LoomError } from '../../shared/errors/index.ts';
import {
  type CoordinatorDb,
  jsonSublevel,
  SUBLEVEL,
  type WriteOptions,
  withStoreErrors,
} from '../store/index.ts';
import type { EvaluationRecord } from './evaluation-record.ts';

export interface EvaluationStore {
  /** Writes the record durably, with the audit entry of `options`. */
  put(record: EvaluationRecord, options?: WriteOptions): Promise<void>;
  /** LOOM_ERR_NOT_FOUND when the model has no such evaluation. */
  get(model: string, id: string): Promise<EvaluationRecord>;
  /** The model's evaluations, newest first. */
  list(model: string): Promise<EvaluationRecord[]>;
  /** Every evaluation still marked running (after a restart: those the last process left). */
  running(): Promise<EvaluationRecord[]>;
}

/** Model names carry no '/', and ids sort below ':' after it, so this is one model's range. */
function modelRange(model: string): { gt: string; lt: string } {
  return { gt: `${model}/`, lt: `${model}/\uffff` };
}

export function createLevelEvaluationStore(db: CoordinatorDb): EvaluationStore {
  const evaluations = jsonSublevel<EvaluationRecord>(db.root, SUBLEVEL.evaluations);
  return {
    put(record, options = {}) {
      const { alongside = [], ...rest } = options;
      return withStoreErrors('save an evaluation', () =>
        db
          .commit(
            [
              { type: 'put', sublevel: evaluations, key: `${record.model}/${record.id}`, value: record },
              ...alongside,
            ],
            rest,
          )
          .then(() => undefined),
      );
    },
    async get(model, id) {
      const record = await withStoreErrors('read an evaluation', () => evaluations.get(`${model}/${id}`));
      if (!record) {
        throw new LoomError('LOOM_ERR_NOT_FOUND', `model ${model} has no evaluation ${id}`, {
          details: { model, evaluation: id },
        });
      }
      return record;
    },
    async list(model) {
      const all = await withStoreErrors('list evaluations', () =>
        evaluations.values(modelRange(model)).all(),
      );
      return all.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    },
    async running() {
      const all = await withStoreErrors('list evaluations', () => evaluations.values().all());
      return all.filter((e) => e.state === 'running');
    },
  };
}

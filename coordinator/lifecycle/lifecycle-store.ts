// Where a version stands in its lifecycle, kept beside the immutable version records: its stage,
// tags and description (sublevel `version-stages`), and the model's aliases (sublevel `aliases`).
// A version without an entry is in stage `none`.
import {
  type CoordinatorDb,
  jsonSublevel,
  numericKey,
  type StoreOp,
  SUBLEVEL,
  type WriteOptions,
  withStoreErrors,
} from '../store/index.ts';
import type { PromotionPolicy } from './promotion-gate.ts';

export const STAGES = ['none', 'staging', 'production', 'archived', 'retired'] as const;
export type Stage = (typeof STAGES)[number];

/** A version's lifecycle fields. */
export interface VersionLifecycle {
  stage: Stage;
  tags: Record<string, string>;
  description?: string;
  /** When and by whom the stage last changed (absent while it never did). */
  stageChangedAt?: string;
  stageChangedBy?: string;
}

export interface AliasRecord {
  alias: string;
  version: number;
  updatedAt: string;
  updatedBy: string;
}

export interface LifecycleStore {
  /** The version's lifecycle (stage `none`, no tags, for a version never changed). */
  get(model: string, version: number): Promise<VersionLifecycle>;
  /** Every version of the model with a lifecycle entry, by version. */
  all(model: string): Promise<Map<number, VersionLifecycle>>;
  aliases(model: string): Promise<AliasRecord[]>;
  alias(model: string, alias: string): Promise<AliasRecord | undefined>;
  putOp(model: string, version: number, value: VersionLifecycle): StoreOp;
  aliasOp(model: string, alias: string, value: AliasRecord | undefined): StoreOp;
  policy(model: string): Promise<PromotionPolicy | undefined>;
  policyOp(model: string, policy: PromotionPolicy): StoreOp;
  /** Commits `ops` as one durable batch, with the audit entry of `options`. */
  commit(ops: StoreOp[], options?: WriteOptions): Promise<void>;
}

export const DEFAULT_LIFECYCLE: VersionLifecycle = { stage: 'none', tags: {} };

function versionKey(model: string, version: number): string {
  return `${model}/${numericKey(version)}`;
}

function range(model: string): { gt: string; lt: string } {
  return { gt: `${model}/`, lt: `${model}/\uffff` };
}

export function createLevelLifecycleStore(db: CoordinatorDb): LifecycleStore {
  const stages = jsonSublevel<VersionLifecycle>(db.root, SUBLEVEL.versionStages);
  const aliases = jsonSublevel<AliasRecord>(db.root, SUBLEVEL.aliases);
  const policies = jsonSublevel<PromotionPolicy>(db.root, SUBLEVEL.promotionPolicies);
  return {
    async get(model, version) {
      const found = await withStoreErrors('read a version stage', () =>
        stages.get(versionKey(model, version)),
      );
      return found ?? { ...DEFAULT_LIFECYCLE, tags: {} };
    },
    async all(model) {
      const entries = await withStoreErrors('read version stages', () => stages.iterator(range(model)).all());
      return new Map(entries.map(([key, value]) => [Number(key.slice(model.length + 1)), value]));
    },
    aliases: (model) => withStoreErrors('read aliases', () => aliases.values(range(model)).all()),
    alias: (model, alias) => withStoreErrors('read an alias', () => aliases.get(`${model}/${alias}`)),
    putOp: (model, version, value) => ({
      type: 'put',
      sublevel: stages,
      key: versionKey(model, version),
      value,
    }),
    aliasOp: (model, alias, value) =>
      value === undefined
        ? { type: 'del', sublevel: aliases, key: `${model}/${alias}` }
        : { type: 'put', sublevel: aliases, key: `${model}/${alias}`, value },
    policy: (model) => withStoreErrors('read a promotion policy', () => policies.get(model)),
    policyOp: (model, policy) => ({ type: 'put', sublevel: policies, key: model, value: policy }),
    async commit(ops, options = {}) {
      const { alongside = [], ...rest } = options;
      await withStoreErrors('save a version stage', () => db.commit([...ops, ...alongside], rest));
    },
  };
}

// The store check's part for the lifecycle records: evaluations, version stages, aliases,
// promotion policies, deployment targets, rollouts and retirements. Each record is read on its
// own (raw text, parsed here), so one damaged record is reported with its key and the rest are
// still checked; nothing here throws for what it finds.
import type { StoreProblem } from '../../shared/store/index.ts';
import type { VersionRecord } from '../registry/index.ts';
import { type CoordinatorDb, SUBLEVEL, type SublevelName } from '../store/index.ts';

/** Stable kinds (codes) of the problems this check reports; messages may change, these do not. */
export const LIFECYCLE_PROBLEM_KINDS = {
  /** A record that is not JSON, or not an object of the expected shape. */
  unreadable: 'record-unreadable',
  evaluationVersion: 'evaluation-version',
  stageVersion: 'stage-version',
  stageUnknown: 'stage-unknown',
  stageProduction: 'stage-production',
  aliasVersion: 'alias-version',
  policyModel: 'policy-model',
  deploymentVersion: 'deployment-version',
  rolloutVersion: 'rollout-version',
  rolloutState: 'rollout-state',
  retirementVersion: 'retirement-version',
  retirementSuccessor: 'retirement-successor',
} as const;

const K = LIFECYCLE_PROBLEM_KINDS;

const STAGES = new Set(['none', 'staging', 'production', 'archived', 'retired']);
const ROLLOUT_STATES = new Set(['running', 'paused', 'completed', 'rolled-back']);

/** A problem of one record, named by its sublevel and key. */
export type RecordProblem = StoreProblem & { record: { sublevel: string; key: string } };

type Add = (kind: string, message: string, record: { sublevel: string; key: string }) => void;

/** Every record of a sublevel as raw text, each parsed on its own. */
async function* records(
  db: CoordinatorDb,
  name: SublevelName,
): AsyncGenerator<{ key: string; value: Record<string, unknown> | undefined; error?: string }> {
  const raw = db.root.sublevel<string, string>(name, { valueEncoding: 'utf8' });
  for await (const [key, text] of raw.iterator()) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      yield { key, value: undefined, error: `is not JSON (${(err as Error).message.slice(0, 80)})` };
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      yield { key, value: undefined, error: 'is not a JSON object' };
      continue;
    }
    yield { key, value: value as Record<string, unknown> };
  }
}

const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
const isVersion = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1;
const show = (v: unknown): string => JSON.stringify(v)?.slice(0, 80) ?? String(v);

/**
 * Checks the lifecycle records against the registry (`versionsByModel`: every model with its
 * versions) and reports each problem through `add`, with the record's sublevel and key.
 */
export async function checkLifecycleRecords(
  db: CoordinatorDb,
  versionsByModel: ReadonlyMap<string, readonly VersionRecord[]>,
  add: Add,
): Promise<{ records: number }> {
  let count = 0;
  const versions = new Map([...versionsByModel].map(([m, vs]) => [m, new Set(vs.map((v) => v.version))]));
  /** Why `model`@`version` cannot be referenced, or undefined when it exists. */
  const missing = (model: unknown, version: unknown): string | undefined => {
    if (!isName(model)) return `names no model (${show(model)})`;
    const known = versions.get(model);
    if (!known) return `names model ${model}, which does not exist`;
    if (version === undefined) return undefined;
    if (!isVersion(version))
      return `names version ${show(version)} of model ${model}, which is not a version number`;
    return known.has(version) ? undefined : `names ${model} version ${version}, which does not exist`;
  };
  /** The model and version a `<model>/<padded version>` key names. */
  const fromKey = (key: string): { model: string; version: number } => {
    const at = key.lastIndexOf('/');
    return { model: key.slice(0, Math.max(0, at)), version: Number(key.slice(at + 1)) };
  };

  const each = async (
    name: SublevelName,
    check: (key: string, value: Record<string, unknown>, where: { sublevel: string; key: string }) => void,
  ): Promise<void> => {
    for await (const r of records(db, name)) {
      count++;
      const where = { sublevel: name, key: r.key };
      if (!r.value) {
        add(K.unreadable, `${name} ${r.key}: the record ${r.error}`, where);
        continue;
      }
      check(r.key, r.value, where);
    }
  };

  await each(SUBLEVEL.evaluations, (key, e, where) => {
    const why = missing(e.model, e.version);
    if (why) add(K.evaluationVersion, `evaluations ${key}: the evaluation ${why}`, where);
  });

  const production = new Map<string, number[]>();
  await each(SUBLEVEL.versionStages, (key, s, where) => {
    const { model, version } = fromKey(key);
    const why = missing(model, version);
    if (why) add(K.stageVersion, `version-stages ${key}: the stage record ${why}`, where);
    if (!STAGES.has(s.stage as string)) {
      add(
        K.stageUnknown,
        `version-stages ${key}: stage ${show(s.stage)} is not one of ${[...STAGES].join(', ')}`,
        where,
      );
    }
    if (s.stage === 'production') production.set(model, [...(production.get(model) ?? []), version]);
  });
  for (const [model, list] of production) {
    if (list.length < 2) continue;
    add(
      K.stageProduction,
      `version-stages ${model}: ${list.length} versions are in production (${list.join(', ')}); a model has at most one`,
      { sublevel: SUBLEVEL.versionStages, key: `${model}/` },
    );
  }

  await each(SUBLEVEL.aliases, (key, a, where) => {
    const model = key.slice(0, Math.max(0, key.indexOf('/')));
    const why = missing(model, a.version);
    if (why) add(K.aliasVersion, `aliases ${key}: the alias ${why}`, where);
  });

  await each(SUBLEVEL.promotionPolicies, (key, _p, where) => {
    const why = missing(key, undefined);
    if (why) add(K.policyModel, `promotion-policies ${key}: the policy ${why}`, where);
  });

  await each(SUBLEVEL.deployments, (key, d, where) => {
    const why = missing(d.model, d.version);
    if (why) add(K.deploymentVersion, `deployments ${key}: the deployment ${why}`, where);
  });
  await each(SUBLEVEL.agentTargets, (key, t, where) => {
    const why = missing(t.model, t.version);
    if (why) add(K.deploymentVersion, `deployment-agents ${key}: the agent's target ${why}`, where);
  });

  await each(SUBLEVEL.rollouts, (key, r, where) => {
    const why = missing(r.model, r.version);
    if (why) add(K.rolloutVersion, `rollouts ${key}: the rollout ${why}`, where);
    if (!ROLLOUT_STATES.has(r.state as string)) {
      add(
        K.rolloutState,
        `rollouts ${key}: state ${show(r.state)} is not one of ${[...ROLLOUT_STATES].join(', ')}`,
        where,
      );
    }
  });

  await each(SUBLEVEL.retirements, (key, r, where) => {
    const why = missing(r.model, r.version);
    if (why) add(K.retirementVersion, `retirements ${key}: the retired version ${why}`, where);
    const successor = missing(r.model, r.successor);
    if (!why && successor)
      add(K.retirementSuccessor, `retirements ${key}: its successor ${successor}`, where);
  });

  return { records: count };
}

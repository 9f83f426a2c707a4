// The names of the coordinator's sublevels, kept in one place so two stores never share a prefix.
import type { RootLevel } from './coordinator-db.ts';

/** Sublevel names of the coordinator database, one per kind of record. */
export const SUBLEVEL = {
  models: 'models',
  modelSpecs: 'model-specs',
  versions: 'versions',
  weights: 'weights',
  jobs: 'jobs',
  agents: 'agents',
  enrollmentTokens: 'enrollment-tokens',
  apiTokens: 'api-tokens',
  audit: 'audit',
  deployments: 'deployments',
  /** Per-agent deployment targets (what a rollout, or its rollback, set for one agent). */
  agentTargets: 'deployment-agents',
  rollouts: 'rollouts',
  retirements: 'retirements',
  rounds: 'rounds',
  evaluations: 'evaluations',
  versionStages: 'version-stages',
  aliases: 'aliases',
  promotionPolicies: 'promotion-policies',
  meta: 'meta',
} as const;

export type SublevelName = (typeof SUBLEVEL)[keyof typeof SUBLEVEL];

function jsonSublevelOf<V>(root: RootLevel, name: SublevelName) {
  return root.sublevel<string, V>(name, { valueEncoding: 'json' });
}

function binarySublevelOf(root: RootLevel, name: SublevelName) {
  return root.sublevel<string, Buffer>(name, { valueEncoding: 'buffer' });
}

/** A sublevel with string keys and JSON-encoded values of type `V`. */
export type JsonSublevel<V> = ReturnType<typeof jsonSublevelOf<V>>;

/** A sublevel with string keys and raw binary values. */
export type BinarySublevel = ReturnType<typeof binarySublevelOf>;

/** The JSON sublevel `name` of `root` (values are `V`, encoded as JSON). */
export function jsonSublevel<V>(root: RootLevel, name: SublevelName): JsonSublevel<V> {
  return jsonSublevelOf<V>(root, name);
}

/** The binary sublevel `name` of `root`; values are stored byte for byte and read back as Buffers. */
export function binarySublevel(root: RootLevel, name: SublevelName): BinarySublevel {
  return binarySublevelOf(root, name);
}

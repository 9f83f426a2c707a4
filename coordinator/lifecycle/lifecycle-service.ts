// Moves registry versions through their lifecycle: stages (at most one production version per
// model; promoting one archives the one before, in the same batch), aliases that point at one
// version each, tags and a description. Every change is one audited, durable batch. Promotion to
// production starts a staged rollout (`startRollout`) whose record is written in the promotion's
// batch; when that rollout is rolled back, the stages are put back as they were.
import { LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { ModelRegistry } from '../registry/index.ts';
import type { RolloutPlan } from '../rollouts/index.ts';
import { KeyedMutex, type StoreOp } from '../store/index.ts';
import {
  type AliasRecord,
  DEFAULT_LIFECYCLE,
  type LifecycleStore,
  STAGES,
  type Stage,
  type VersionLifecycle,
} from './lifecycle-store.ts';
import { type GateEvaluation, gateReasons, type PromotionPolicy } from './promotion-gate.ts';

const STAGE_SET: ReadonlySet<string> = new Set(STAGES);

/** Alias names: a letter first (so never a version number), then letters, digits, `.`, `_`, `-`. */
export const ALIAS_PATTERN = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

/** The stages each stage may move to without force. Retired is the end of a version's life. */
const TRANSITIONS: Record<Stage, readonly Stage[]> = {
  none: ['staging', 'production', 'archived', 'retired'],
  staging: ['none', 'production', 'archived', 'retired'],
  production: ['staging', 'archived', 'retired'],
  archived: ['staging', 'production', 'retired'],
  retired: [],
};

/** The gate of `promote: "if-better"` on a model without a policy: no accuracy lost against production. */
export const IF_BETTER_POLICY: PromotionPolicy = { metric: 'accuracy', maxRegression: 0 };

export interface LifecycleServiceOptions {
  store: LifecycleStore;
  registry: ModelRegistry;
  /** The latest completed federated evaluation of a version, for the gate (none: no gate can pass). */
  latestEvaluation?: (model: string, version: number) => Promise<GateEvaluation | undefined>;
  /**
   * Starts the rollout of a promotion to production. It must call `commit` (the promotion's
   * batch, with its own writes added) exactly once or throw before it, which refuses the promotion.
   * Without it, a promotion only changes the stage.
   */
  startRollout?: PromotionRollout;
  log: Logger;
}

/** What a promotion to production hands to its rollout. */
export interface PromotionStart {
  model: string;
  version: number;
  actor: string;
  /** Plans of the promotion, the first that sets a field wins: the request's (or job's), the policy's. */
  plans: (RolloutPlan | undefined)[];
  /** The production version this promotion archives (null: none). */
  previousProduction: number | null;
  /** The stage the version had before. */
  previousStage: Stage;
}

/** Starts a promotion's rollout inside the promotion's write; the rollout id (null: none was needed). */
export type PromotionRollout = (
  start: PromotionStart,
  commit: (ops: StoreOp[], rollout: string | null) => Promise<void>,
) => Promise<string | null>;

/** What a stage change returns: the lifecycle, and for a promotion the rollout it started. */
export interface StageChangeView extends LifecycleView {
  /** Set for a promotion to production: the rollout it started (null: no agent to roll out to). */
  rollout?: string | null;
}

/** A version's lifecycle with the aliases that point at it. */
export interface LifecycleView extends VersionLifecycle {
  aliases: string[];
}

export interface StageChange {
  actor: string;
  /** Moves a version where the rules would not (out of retired). Only admins may force. */
  force?: boolean;
  reason?: string;
  /** How a promotion to production rolls out; fields left out come from the model's policy, then defaults. */
  rollout?: RolloutPlan;
}

export class LifecycleService {
  private readonly locks = new KeyedMutex();
  private readonly log: Logger;

  constructor(private readonly opts: LifecycleServiceOptions) {
    this.log = opts.log;
  }

  /** A version number or an alias of `model` → the version number; LOOM_ERR_NOT_FOUND otherwise. */
  async resolve(model: string, ref: string): Promise<number> {
    if (/^\d{1,15}$/.test(ref) && Number(ref) >= 1) return Number(ref);
    if (!ALIAS_PATTERN.test(ref)) {
      throw new LoomError(
        'LOOM_ERR_INVALID_ARGUMENT',
        `version "${ref}" is neither a version number nor an alias`,
        {
          details: { field: 'version' },
        },
      );
    }
    await this.opts.registry.getModel(model);
    const alias = await this.opts.store.alias(model, ref);
    if (!alias) {
      throw new LoomError('LOOM_ERR_NOT_FOUND', `model ${model} has no alias "${ref}"`, {
        details: { model, alias: ref },
      });
    }
    return alias.version;
  }

  async view(model: string, version: number): Promise<LifecycleView> {
    const [lifecycle, aliases] = await Promise.all([
      this.opts.store.get(model, version),
      this.opts.store.aliases(model),
    ]);
    return { ...lifecycle, aliases: aliases.filter((a) => a.version === version).map((a) => a.alias) };
  }

  /** Every version's lifecycle (versions never changed are left out: stage none). */
  async views(model: string): Promise<Map<number, LifecycleView>> {
    const [all, aliases] = await Promise.all([this.opts.store.all(model), this.opts.store.aliases(model)]);
    const views = new Map<number, LifecycleView>();
    for (const [version, lifecycle] of all) views.set(version, { ...lifecycle, aliases: [] });
    for (const a of aliases) {
      const v = views.get(a.version) ?? { ...DEFAULT_LIFECYCLE, tags: {}, aliases: [] };
      v.aliases.push(a.alias);
      views.set(a.version, v);
    }
    return views;
  }

  async policy(model: string): Promise<PromotionPolicy | undefined> {
    await this.opts.registry.getModel(model);
    return this.opts.store.policy(model);
  }

  /** Replaces the model's promotion policy; audited. */
  setPolicy(model: string, policy: PromotionPolicy, actor: string): Promise<PromotionPolicy> {
    return this.locks.run(model, async () => {
      await this.opts.registry.getModel(model);
      await this.opts.store.commit([this.opts.store.policyOp(model, policy)], {
        audit: { actor, action: 'model.policy', target: model, details: { ...policy } },
      });
      return policy;
    });
  }

  /**
   * Why `version` may not become production now (empty: it may): the policy's bounds on its latest
   * completed evaluation, and the regression against the production version on the same agents.
   * No policy, no gate.
   */
  async gate(model: string, version: number, fallback?: PromotionPolicy): Promise<string[]> {
    const policy = (await this.opts.store.policy(model)) ?? fallback;
    if (!policy) return [];
    const latest = this.opts.latestEvaluation ?? (async () => undefined);
    let production: { version: number; evaluation: GateEvaluation | undefined } | undefined;
    for (const [v, lifecycle] of await this.opts.store.all(model)) {
      if (v !== version && lifecycle.stage === 'production') {
        production = { version: v, evaluation: await latest(model, v) };
      }
    }
    return gateReasons(policy, await latest(model, version), production);
  }

  /**
   * What a job's final version becomes: staging when the policy says so, then production when
   * `ifBetter` and the gate passes (with no policy set, the gate is IF_BETTER_POLICY: an evaluation,
   * and no accuracy lost against production on the same agents).
   */
  async settleCandidate(
    model: string,
    version: number,
    options: { actor: string; ifBetter: boolean; rollout?: RolloutPlan },
  ): Promise<{ stage: Stage; promoted?: boolean; reasons?: string[]; rollout?: string | null }> {
    const policy = await this.opts.store.policy(model);
    let stage: Stage = 'none';
    if (policy?.stageOnComplete === 'staging') {
      await this.setStage(model, version, 'staging', { actor: options.actor });
      stage = 'staging';
    }
    if (!options.ifBetter) return { stage };
    const reasons = await this.gate(model, version, IF_BETTER_POLICY);
    if (reasons.length > 0) return { stage, promoted: false, reasons };
    let changed: StageChangeView;
    try {
      changed = await this.setStage(model, version, 'production', {
        actor: options.actor,
        reason: 'promote: if-better',
        ...(options.rollout ? { rollout: options.rollout } : {}),
      });
    } catch (err) {
      if (err instanceof LoomError && err.code === 'LOOM_ERR_GATE') {
        return { stage, promoted: false, reasons: (err.details?.reasons as string[]) ?? [err.message] };
      }
      throw err;
    }
    return {
      stage: 'production',
      promoted: true,
      ...(changed.rollout !== undefined ? { rollout: changed.rollout } : {}),
    };
  }

  aliases(model: string): Promise<AliasRecord[]> {
    return this.opts.store.aliases(model);
  }

  /** Sets the description and replaces the tags given (a tag set to null is removed); audited. */
  update(
    model: string,
    version: number,
    patch: { description?: string; tags?: Record<string, string | null> },
    actor: string,
  ): Promise<LifecycleView> {
    return this.locks.run(model, async () => {
      await this.opts.registry.getVersion(model, version);
      const current = await this.opts.store.get(model, version);
      const tags = { ...current.tags };
      for (const [k, v] of Object.entries(patch.tags ?? {})) {
        if (v === null) delete tags[k];
        else tags[k] = v;
      }
      const next: VersionLifecycle = {
        ...current,
        tags,
        ...(patch.description === undefined ? {} : { description: patch.description }),
      };
      await this.opts.store.commit([this.opts.store.putOp(model, version, next)], {
        audit: { actor, action: 'version.update', target: `${model}@${version}`, details: { ...patch } },
      });
      return this.view(model, version);
    });
  }

  /**
   * Moves a version to `stage`. Production is held by one version per model: the one before is
   * archived in the same batch. LOOM_ERR_CONFLICT for a move the rules do not allow (unless
   * forced) or a version already there.
   */
  async setStage(
    model: string,
    version: number,
    stage: Stage,
    change: StageChange,
  ): Promise<StageChangeView> {
    const { rollout } = await this.locks.run(model, async () => {
      await this.opts.registry.getVersion(model, version);
      const current = await this.opts.store.get(model, version);
      if (current.stage === stage) {
        throw new LoomError('LOOM_ERR_CONFLICT', `${model} version ${version} is already in stage ${stage}`, {
          details: { model, version, stage },
        });
      }
      const allowed = TRANSITIONS[current.stage].includes(stage);
      if (!allowed && !change.force) {
        throw new LoomError(
          'LOOM_ERR_CONFLICT',
          `${model} version ${version} cannot move from ${current.stage} to ${stage}` +
            (current.stage === 'retired' ? ' (retired is final; an admin may force it with a reason)' : ''),
          { details: { model, version, from: current.stage, to: stage } },
        );
      }
      // The gate: an admin's force with a reason passes it, and the audit entry keeps what it said.
      const gate = stage === 'production' ? await this.gate(model, version) : [];
      if (gate.length > 0 && !change.force) {
        throw new LoomError(
          'LOOM_ERR_GATE',
          `${model} version ${version} may not become production: ${gate.join('; ')}`,
          { details: { model, version, reasons: gate } },
        );
      }
      const forced = change.force === true && (!allowed || gate.length > 0);
      const now = new Date().toISOString();
      const ops: StoreOp[] = [
        this.opts.store.putOp(model, version, {
          ...current,
          stage,
          stageChangedAt: now,
          stageChangedBy: change.actor,
        }),
      ];
      let previous: number | undefined;
      if (stage === 'production') {
        for (const [v, lifecycle] of await this.opts.store.all(model)) {
          if (v === version || lifecycle.stage !== 'production') continue;
          previous = v;
          ops.push(
            this.opts.store.putOp(model, v, {
              ...lifecycle,
              stage: 'archived',
              stageChangedAt: now,
              stageChangedBy: change.actor,
            }),
          );
        }
      }
      const commit = (extra: StoreOp[], rolloutId?: string | null) =>
        this.opts.store.commit([...ops, ...extra], {
          audit: {
            actor: change.actor,
            action: forced ? 'version.stage.force' : 'version.stage',
            target: `${model}@${version}`,
            details: {
              from: current.stage,
              to: stage,
              ...(previous === undefined ? {} : { archived: previous }),
              ...(change.reason ? { reason: change.reason } : {}),
              ...(change.force ? { force: true } : {}),
              ...(gate.length > 0 ? { gateOverridden: gate } : {}),
              ...(rolloutId !== undefined ? { rollout: rolloutId } : {}),
            },
          },
        });
      let rollout: string | null | undefined;
      if (stage === 'production' && this.opts.startRollout) {
        // The rollout's record goes into the promotion's batch: a promotion whose rollout could
        // not be started is refused whole, and no rollout exists for a stage that did not change.
        let committed = false;
        rollout = await this.opts.startRollout(
          {
            model,
            version,
            actor: change.actor,
            plans: [change.rollout, (await this.opts.store.policy(model))?.rollout],
            previousProduction: previous ?? null,
            previousStage: current.stage,
          },
          async (extra, id) => {
            if (committed) throw new TypeError('a promotion is committed once');
            committed = true;
            await commit(extra, id);
          },
        );
        if (!committed) throw new TypeError('startRollout returned without committing the promotion');
      } else {
        await commit([]);
      }
      this.log.info('version stage changed', {
        model,
        version,
        from: current.stage,
        to: stage,
        by: change.actor,
        ...(rollout ? { rollout } : {}),
      });
      return { rollout };
    });
    const view: StageChangeView = await this.view(model, version);
    if (rollout !== undefined) view.rollout = rollout;
    return view;
  }

  /**
   * Puts the stages back after the rollout of a promotion was rolled back: the version returns
   * to the stage it had and the production version it archived is production again, in one
   * audited batch. A stage changed since (another promotion, a retirement) is left as it is.
   */
  restoreAfterRollback(
    model: string,
    version: number,
    before: { previousProduction: number | null; previousStage: string },
    why: { rollout: string; reason: string },
  ): Promise<void> {
    return this.locks.run(model, async () => {
      const current = await this.opts.store.get(model, version);
      if (current.stage !== 'production') return;
      const back: Stage = (STAGE_SET.has(before.previousStage) ? before.previousStage : 'none') as Stage;
      const now = new Date().toISOString();
      const ops: StoreOp[] = [
        this.opts.store.putOp(model, version, {
          ...current,
          stage: back === 'production' ? 'archived' : back,
          stageChangedAt: now,
          stageChangedBy: 'coordinator',
        }),
      ];
      let restored: number | undefined;
      if (before.previousProduction !== null) {
        const prev = await this.opts.store.get(model, before.previousProduction);
        if (prev.stage === 'archived') {
          restored = before.previousProduction;
          ops.push(
            this.opts.store.putOp(model, restored, {
              ...prev,
              stage: 'production',
              stageChangedAt: now,
              stageChangedBy: 'coordinator',
            }),
          );
        }
      }
      await this.opts.store.commit(ops, {
        audit: {
          actor: 'coordinator',
          action: 'version.stage.restore',
          target: `${model}@${version}`,
          details: {
            from: 'production',
            to: back,
            ...(restored === undefined ? {} : { production: restored }),
            rollout: why.rollout,
            reason: why.reason,
          },
        },
      });
      this.log.warn('stages restored after a rollback', {
        model,
        version,
        to: back,
        production: restored,
        rollout: why.rollout,
      });
    });
  }

  /** Points `alias` at `version` (moving it if it pointed elsewhere); one audited batch. */
  setAlias(model: string, alias: string, version: number, actor: string): Promise<AliasRecord> {
    this.assertAlias(alias);
    return this.locks.run(model, async () => {
      await this.opts.registry.getVersion(model, version);
      const before = await this.opts.store.alias(model, alias);
      const record: AliasRecord = { alias, version, updatedAt: new Date().toISOString(), updatedBy: actor };
      await this.opts.store.commit([this.opts.store.aliasOp(model, alias, record)], {
        audit: {
          actor,
          action: 'alias.set',
          target: `${model}:${alias}`,
          details: { version, ...(before ? { previous: before.version } : {}) },
        },
      });
      return record;
    });
  }

  /** Removes an alias; LOOM_ERR_NOT_FOUND when the model has none of that name. */
  deleteAlias(model: string, alias: string, actor: string): Promise<void> {
    this.assertAlias(alias);
    return this.locks.run(model, async () => {
      await this.opts.registry.getModel(model);
      const before = await this.opts.store.alias(model, alias);
      if (!before) {
        throw new LoomError('LOOM_ERR_NOT_FOUND', `model ${model} has no alias "${alias}"`, {
          details: { model, alias },
        });
      }
      await this.opts.store.commit([this.opts.store.aliasOp(model, alias, undefined)], {
        audit: {
          actor,
          action: 'alias.delete',
          target: `${model}:${alias}`,
          details: { version: before.version },
        },
      });
    });
  }

  private assertAlias(alias: string): void {
    if (!ALIAS_PATTERN.test(alias)) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `alias "${alias}" must match ${ALIAS_PATTERN}`, {
        details: { field: 'alias' },
      });
    }
  }
}

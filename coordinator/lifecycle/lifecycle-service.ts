// Moves registry versions through their lifecycle: stages (at most one production version per
// model; promoting one archives the one before, in the same batch), aliases that point at one
// version each, tags and a description. Every change is one audited, durable batch. Promotion to
// production is handed to `onPromoted` (today: the deployment to every agent).
import { LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { ModelRegistry } from '../registry/index.ts';
import { KeyedMutex, type StoreOp } from '../store/index.ts';
import {
  type AliasRecord,
  DEFAULT_LIFECYCLE,
  type LifecycleStore,
  type Stage,
  type VersionLifecycle,
} from './lifecycle-store.ts';

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

export interface LifecycleServiceOptions {
  store: LifecycleStore;
  registry: ModelRegistry;
  /** Called once a version has become production (after its batch is durable). */
  onPromoted?: (model: string, version: number) => Promise<unknown>;
  log: Logger;
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
  async setStage(model: string, version: number, stage: Stage, change: StageChange): Promise<LifecycleView> {
    const promoted = await this.locks.run(model, async () => {
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
      await this.opts.store.commit(ops, {
        audit: {
          actor: change.actor,
          action: change.force && !allowed ? 'version.stage.force' : 'version.stage',
          target: `${model}@${version}`,
          details: {
            from: current.stage,
            to: stage,
            ...(previous === undefined ? {} : { archived: previous }),
            ...(change.reason ? { reason: change.reason } : {}),
            ...(change.force ? { force: true } : {}),
          },
        },
      });
      this.log.info('version stage changed', {
        model,
        version,
        from: current.stage,
        to: stage,
        by: change.actor,
      });
      return stage === 'production';
    });
    if (promoted && this.opts.onPromoted) {
      // The promotion is durable already; a deployment that fails is logged, not undone.
      await this.opts
        .onPromoted(model, version)
        .catch((err: unknown) =>
          this.log.error('deployment of a promoted version failed', { model, version, error: String(err) }),
        );
    }
    return this.view(model, version);
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

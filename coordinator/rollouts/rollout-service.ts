// Rollouts: a model version reaches its target agents wave by wave. A wave starts by setting the
// version as the target of its agents (DeploymentService.deployTo), is watched for its health
// window once its connected agents run it, and passes when their serving health is within the
// limits; a wave that fails (an agent refuses the version, or health breaks a limit) rolls every
// agent the rollout reached back to the version it ran before. State is committed to LevelDB at
// every step, so a restarted coordinator carries on; agents that were away get their target
// (the new version or the rollback) when they connect.
import { randomBytes } from 'node:crypto';
import { LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { ServingHealthBody } from '../../shared/protocol/index.ts';
import type { DeploymentService } from '../deployments/index.ts';
import { type AgentDirectory, type AgentRecord, selectByLabels } from '../directory/index.ts';
import type { AgentGateway } from '../gateway/index.ts';
import type { ModelRegistry } from '../registry/index.ts';
import {
  type AuditEvent,
  type CoordinatorDb,
  jsonSublevel,
  SUBLEVEL,
  withStoreErrors,
} from '../store/index.ts';
import { HealthCounter, healthViolation, summarize } from './health.ts';
import { assignWaves, type RolloutAgent, type RolloutRecord, type RolloutRequest } from './rollout-record.ts';

export interface RolloutServiceOptions {
  db: CoordinatorDb;
  deployments: DeploymentService;
  agents: AgentDirectory;
  registry: ModelRegistry;
  gateway: AgentGateway;
  log: Logger;
  /** How often running rollouts are judged, in ms. Default 500. */
  tickMs?: number;
}

export const ROLLOUT_SERVICE_DEFAULTS = { tickMs: 500 } as const;

/** A rollout as the API shows it: its record, with the live health of a wave being watched. */
export type RolloutView = Omit<RolloutRecord, 'agents'> & { agents: RolloutAgent[] };

/** States of an agent whose wave started but which does not run the version yet. */
const ON_THE_WAY = new Set(['pending', 'transferring', 'verifying']);

/**
 * Whether a rollout still acts: running or paused, rolled back with agents still on their way
 * back, or completed with agents that were away still to get the version.
 */
function isLive(r: RolloutRecord): boolean {
  if (r.state === 'running' || r.state === 'paused') return true;
  const agents = Object.values(r.agents);
  if (agents.some((a) => a.state === 'rolling-back')) return true;
  return r.state === 'completed' && agents.some((a) => ON_THE_WAY.has(a.state));
}

/** Returned by a change that need not be committed (see `mutate`). */
const TRANSIENT = Symbol('transient');

export class RolloutService {
  private readonly rollouts;
  /** Rollouts that still act: running, paused, or rolled back with agents still on their way back. */
  private readonly live = new Map<string, RolloutRecord>();
  /** Serving health of the agents of the wave being watched, per rollout, since it started. */
  private readonly health = new Map<string, Map<string, HealthCounter>>();
  private readonly log: Logger;
  private timer?: NodeJS.Timeout;
  private ticking = false;
  private closed = false;

  constructor(private readonly opts: RolloutServiceOptions) {
    this.rollouts = jsonSublevel<RolloutRecord>(opts.db.root, SUBLEVEL.rollouts);
    this.log = opts.log;
  }

  /** Loads the rollouts that still act, re-issues their targets, and starts judging them. */
  async start(): Promise<void> {
    for (const r of await withStoreErrors('read rollouts', () => this.rollouts.values().all())) {
      if (!isLive(r)) continue;
      // The health seen before the restart is gone: a wave being watched is watched again.
      for (const w of r.waves) if (w.state === 'running') delete w.observingSince;
      this.live.set(r.id, r);
    }
    const d = this.opts.deployments;
    d.on('sent', (p) => this.onProgress(p.agentId, p.model, p.version, 'transferring'));
    d.on('written', (p) => this.onProgress(p.agentId, p.model, p.version, 'verifying'));
    d.on('ack', (a) => this.onAck(a.agentId, a.model, a.version, a.ok, a.error));
    this.opts.gateway.on('serving-health', ({ agentId, report }) => this.onHealth(agentId, report));
    // A crash between a decision and its targets leaves them to set again (setting is idempotent).
    for (const r of this.live.values()) await this.reissueTargets(r);
    const tickMs = this.opts.tickMs ?? ROLLOUT_SERVICE_DEFAULTS.tickMs;
    this.timer = setInterval(() => void this.tick(), tickMs);
    this.timer.unref();
    if (this.live.size > 0) this.log.info('rollouts resumed', { rollouts: [...this.live.keys()].join(',') });
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  /**
   * Starts a rollout of `req.version` to the agents `req.target` names. LOOM_ERR_NOT_FOUND for an
   * unknown model, version or named agent, LOOM_ERR_ROLLOUT_ACTIVE while the model has another
   * rollout running or paused, LOOM_ERR_NO_TARGETS when no agent that is not revoked matches.
   */
  async create(req: RolloutRequest, actor: string, extra: { retiring?: number } = {}): Promise<RolloutView> {
    await this.opts.registry.getVersion(req.model, req.version);
    const record = await this.opts.db.locks.run(`rollouts-of:${req.model}`, async () => {
      const active = [...this.live.values()].find(
        (r) => r.model === req.model && (r.state === 'running' || r.state === 'paused'),
      );
      if (active) {
        throw new LoomError(
          'LOOM_ERR_ROLLOUT_ACTIVE',
          `model "${req.model}" already has rollout ${active.id} (${active.state}); wait for it, or roll it back`,
          { details: { rollout: active.id } },
        );
      }
      const targets = await this.resolveTargets(req);
      const now = new Date().toISOString();
      const waves = assignWaves(
        targets.map((a) => a.id),
        req.waves,
      );
      const agents: Record<string, RolloutAgent> = {};
      waves.forEach((ids, wave) => {
        for (const id of ids) {
          const a = targets.find((t) => t.id === id)!;
          agents[id] = {
            id,
            wave,
            previousVersion: a.models?.[req.model] ?? null,
            state: 'pending',
            updatedAt: now,
          };
        }
      });
      const r: RolloutRecord = {
        id: `rollout-${randomBytes(6).toString('hex')}`,
        model: req.model,
        version: req.version,
        target: req.target,
        policy: req.policy,
        state: 'running',
        currentWave: 0,
        waves: req.waves.map((percent, i) => ({ percent, agents: waves[i], state: 'pending' })),
        agents,
        createdAt: now,
        createdBy: actor,
        updatedAt: now,
        ...(extra.retiring !== undefined ? { retiring: extra.retiring } : {}),
      };
      await this.save(r, {
        actor,
        action: 'rollout.create',
        target: r.id,
        details: {
          model: r.model,
          version: r.version,
          target: r.target,
          waves: req.waves,
          agents: targets.length,
        },
      });
      this.live.set(r.id, r);
      return r;
    });
    this.log.info('rollout started', { rollout: record.id, model: record.model, version: record.version });
    await this.advance(record.id);
    return this.view(this.live.get(record.id) ?? record);
  }

  /** Every rollout, newest first. */
  async list(): Promise<RolloutView[]> {
    const all = await withStoreErrors('list rollouts', () => this.rollouts.values().all());
    return all
      .map((r) => this.view(this.live.get(r.id) ?? r))
      .sort((a, b) =>
        a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1,
      );
  }

  /** One rollout; LOOM_ERR_NOT_FOUND when there is none with that id. */
  async get(id: string): Promise<RolloutView> {
    return this.view(await this.record(id));
  }

  /** Whether `model` has a rollout running or paused. */
  activeFor(model: string): RolloutRecord | undefined {
    return [...this.live.values()].find(
      (r) => r.model === model && (r.state === 'running' || r.state === 'paused'),
    );
  }

  /** Stops a running rollout where it is; LOOM_ERR_ROLLOUT_STATE unless it is running. */
  async pause(id: string, actor: string): Promise<RolloutView> {
    return this.view(
      await this.mutate(id, { actor, action: 'rollout.pause', target: id }, (r) => {
        if (r.state !== 'running') throw stateError(r, 'pause', 'running');
        r.state = 'paused';
      }),
    );
  }

  /** Carries on with a paused rollout; the wave being watched is watched again from now. */
  async resume(id: string, actor: string): Promise<RolloutView> {
    const r = await this.mutate(id, { actor, action: 'rollout.resume', target: id }, (r) => {
      if (r.state !== 'paused') throw stateError(r, 'resume', 'paused');
      r.state = 'running';
      const wave = r.waves[r.currentWave];
      if (wave.state === 'running') delete wave.observingSince;
      this.health.delete(r.id);
    });
    await this.advance(id);
    return this.view(this.live.get(id) ?? r);
  }

  /** Returns every agent the rollout reached to the version it ran before. */
  async rollback(id: string, actor: string): Promise<RolloutView> {
    const r = await this.record(id);
    if (r.state === 'rolled-back') throw stateError(r, 'roll back', 'running, paused or completed');
    return this.view(await this.rollBackNow(id, `rolled back by ${actor}`, actor));
  }

  // --- internals -------------------------------------------------------------------------

  private view(r: RolloutRecord): RolloutView {
    const counters = this.health.get(r.id);
    return {
      ...r,
      waves: r.waves.map((w, i) =>
        i === r.currentWave && w.state === 'running' && w.observingSince && counters
          ? { ...w, health: summarize(w.agents.flatMap((a) => counters.get(a) ?? [])) }
          : w,
      ),
      agents: Object.values(r.agents).sort((a, b) => a.wave - b.wave || (a.id < b.id ? -1 : 1)),
    };
  }

  private async record(id: string): Promise<RolloutRecord> {
    const live = this.live.get(id);
    if (live) return live;
    if (typeof id !== 'string' || id.length === 0 || id.length > 256) throw notFound(id);
    const r = await withStoreErrors(`read rollout ${id}`, () => this.rollouts.get(id));
    if (!r) throw notFound(id);
    return r;
  }

  private async resolveTargets(req: RolloutRequest): Promise<AgentRecord[]> {
    const all = await this.opts.agents.list();
    let chosen: AgentRecord[];
    if ('agents' in req.target) {
      const byId = new Map(all.map((a) => [a.id, a]));
      const unknown = req.target.agents.filter((id) => !byId.has(id));
      if (unknown.length > 0) {
        throw new LoomError('LOOM_ERR_NOT_FOUND', `no agent with id ${unknown.slice(0, 5).join(', ')}`, {
          details: { field: 'target.agents' },
        });
      }
      chosen = req.target.agents.map((id) => byId.get(id)!).filter((a) => !a.revoked);
    } else if ('labels' in req.target) {
      chosen = selectByLabels(all, req.target.labels);
    } else {
      chosen = all.filter((a) => !a.revoked);
    }
    if (chosen.length === 0) {
      throw new LoomError('LOOM_ERR_NO_TARGETS', 'the target matches no enrolled agent that is not revoked', {
        details: { field: 'target' },
      });
    }
    return chosen;
  }

  /** Commits a rollout record (with an audit entry for decisions and operator calls). */
  private async save(r: RolloutRecord, audit?: AuditEvent): Promise<void> {
    r.updatedAt = new Date().toISOString();
    await withStoreErrors('save a rollout', () =>
      this.opts.db.commit(
        [{ type: 'put', sublevel: this.rollouts, key: r.id, value: r }],
        audit ? { audit } : {},
      ),
    );
  }

  /**
   * Changes one rollout under its lock: `change` edits a copy, which is committed and becomes the
   * live record; returning false from `change` means nothing changed (nothing is written).
   */
  private mutate(
    id: string,
    audit: AuditEvent | undefined,
    change: (r: RolloutRecord) => unknown,
  ): Promise<RolloutRecord> {
    return this.opts.db.locks.run(`rollout:${id}`, async () => {
      const current = await this.record(id);
      const next = structuredClone(current);
      const result = change(next);
      if (result === false) return current;
      const durable = result !== TRANSIENT;
      // A passing state (transferring, verifying) is shown but not committed: after a restart
      // the agent is sent its target again anyway, and every fsync is on the rollout's path.
      if (durable || !this.live.has(id)) await this.save(next, audit);
      else next.updatedAt = new Date().toISOString();
      if (isLive(next)) this.live.set(id, next);
      else {
        this.live.delete(id);
        this.health.delete(id);
      }
      return next;
    });
  }

  /** Live rollouts of `model` that reach `agentId`. */
  private reaching(agentId: string, model: string): RolloutRecord[] {
    return [...this.live.values()].filter((r) => r.model === model && r.agents[agentId] !== undefined);
  }

  private onProgress(
    agentId: string,
    model: string,
    version: number,
    state: 'transferring' | 'verifying',
  ): void {
    for (const r of this.reaching(agentId, model)) {
      if (r.version !== version || r.state === 'rolled-back') continue;
      const before =
        state === 'transferring' ? ['pending', 'transferring', 'verifying', 'failed'] : ['transferring'];
      void this.setAgent(r.id, agentId, (a) => (before.includes(a.state) ? { state } : undefined));
    }
  }

  private onAck(agentId: string, model: string, version: number, ok: boolean, error?: string): void {
    for (const r of this.reaching(agentId, model)) {
      const a = r.agents[agentId];
      if (r.state !== 'rolled-back') {
        if (version !== r.version) continue;
        void this.setAgent(r.id, agentId, (a) => {
          if (ok) return a.state === 'active' ? undefined : { state: 'active' };
          return { state: 'failed', reason: `refused version ${version}: ${error ?? 'no reason given'}` };
        }).then(() => (ok ? undefined : this.advance(r.id)));
      } else if (a.state === 'rolling-back' && version === a.previousVersion) {
        void this.setAgent(r.id, agentId, () =>
          ok
            ? { state: 'rolled-back' }
            : {
                state: 'failed',
                reason: `refused to roll back to version ${version}: ${error ?? 'no reason given'}`,
              },
        );
      }
    }
  }

  private setAgent(
    id: string,
    agentId: string,
    change: (a: RolloutAgent) => Partial<RolloutAgent> | undefined,
  ): Promise<unknown> {
    return this.mutate(id, undefined, (r) => {
      const a = r.agents[agentId];
      const patch = a ? change(a) : undefined;
      if (!patch) return false;
      Object.assign(a, patch, { updatedAt: new Date().toISOString() });
      if (patch.state !== 'failed') delete a.reason;
      if (patch.reason) a.reason = patch.reason;
      if (patch.state === 'active') this.health.get(id)?.delete(agentId);
      return patch.state === 'transferring' || patch.state === 'verifying' ? TRANSIENT : true;
    }).catch((err: unknown) =>
      this.log.warn('could not record rollout progress', { rollout: id, error: String(err) }),
    );
  }

  private onHealth(agentId: string, report: ServingHealthBody): void {
    for (const v of report.versions) {
      for (const r of this.reaching(agentId, v.name)) {
        const wave = r.waves[r.currentWave];
        const a = r.agents[agentId];
        if (r.state !== 'running' || v.version !== r.version || a.wave !== r.currentWave) continue;
        if (a.state !== 'active' || !wave.observingSince) continue;
        let counters = this.health.get(r.id);
        if (!counters) {
          counters = new Map();
          this.health.set(r.id, counters);
        }
        let c = counters.get(agentId);
        if (!c) {
          c = new HealthCounter();
          counters.set(agentId, c);
        }
        c.add(v);
      }
    }
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      for (const r of [...this.live.values()]) if (r.state === 'running') await this.advance(r.id);
    } finally {
      this.ticking = false;
    }
  }

  /** Judges a running rollout: starts, watches, passes or fails its current wave. */
  private async advance(id: string): Promise<void> {
    try {
      let failure: string | undefined;
      let completed: RolloutRecord | undefined;
      let start: { version: number; agents: string[] } | undefined;
      const r = await this.mutate(id, undefined, (r) => {
        if (r.state !== 'running') return false;
        const wave = r.waves[r.currentWave];
        const now = new Date();
        if (wave.state === 'pending') {
          wave.state = 'running';
          wave.startedAt = now.toISOString();
          if (wave.agents.length === 0) {
            wave.note = 'no agents in this wave';
            if (this.passWave(r, now)) completed = r;
            return true;
          }
          start = { version: r.version, agents: wave.agents };
          return true;
        }
        if (wave.state !== 'running') return false;
        const reached = Object.values(r.agents).filter((a) => a.wave <= r.currentWave);
        const failed = reached.find((a) => a.state === 'failed');
        if (failed) {
          failure = `agent ${failed.id} (wave ${failed.wave + 1}) ${failed.reason ?? 'failed'}`;
          return false;
        }
        const online = wave.agents.filter((a) => this.opts.gateway.session(a) !== undefined);
        const running = online.filter((a) => r.agents[a].state === 'active');
        if (!wave.observingSince) {
          if (online.length === 0 || running.length < online.length) {
            const note =
              online.length === 0
                ? 'waiting for an agent of this wave to connect'
                : `waiting for ${online.length - running.length} agent(s) to run the version`;
            if (wave.note === note) return false;
            wave.note = note;
            return true;
          }
          wave.observingSince = now.toISOString();
          wave.note = 'watching serving health';
          this.health.delete(r.id);
          return true;
        }
        const health = summarize(wave.agents.flatMap((a) => this.health.get(r.id)?.get(a) ?? []));
        const violation = healthViolation(health, r.policy);
        const enough = health.requests >= Math.max(1, r.policy.minRequests);
        if (violation && enough) {
          wave.health = health;
          failure = `wave ${r.currentWave + 1} is unhealthy: ${violation}`;
          return true;
        }
        const elapsed = now.getTime() - Date.parse(wave.observingSince);
        if (elapsed < r.policy.healthWindowSec * 1000) return false;
        if (health.requests < r.policy.minRequests) {
          const note = `waiting for ${r.policy.minRequests} predictions (${health.requests} so far)`;
          if (wave.note === note) return false;
          wave.note = note;
          return true;
        }
        wave.health = health;
        wave.note = `healthy: ${health.requests} predictions, error rate ${health.errorRate.toFixed(4)}, p99 ${health.p99Ms ?? 'n/a'} ms`;
        if (this.passWave(r, now)) completed = r;
        return true;
      });
      if (failure) {
        await this.rollBackNow(id, failure, 'coordinator');
        return;
      }
      if (start) {
        await this.opts.deployments.deployTo(r.model, start.version, start.agents, {
          rollout: id,
          audit: {
            actor: 'coordinator',
            action: 'rollout.wave',
            target: id,
            details: { wave: r.currentWave + 1, agents: start.agents.length },
          },
        });
        return;
      }
      if (completed) {
        this.log.info('rollout completed', {
          rollout: id,
          model: completed.model,
          version: completed.version,
        });
        await this.opts.db.commit([], {
          audit: {
            actor: 'coordinator',
            action: 'rollout.complete',
            target: id,
            details: { version: completed.version },
          },
        });
        // Rolled out to every agent: new agents get the version too.
        if ('all' in completed.target) await this.opts.deployments.deploy(completed.model, completed.version);
        return;
      }
      const wave = r.waves[r.currentWave];
      if (r.state === 'running' && wave.state === 'pending') await this.advance(id);
    } catch (err) {
      this.log.error('rollout step failed', {
        rollout: id,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** Marks the current wave passed and moves to the next; true when that was the last one. */
  private passWave(r: RolloutRecord, now: Date): boolean {
    const wave = r.waves[r.currentWave];
    wave.state = 'passed';
    wave.endedAt = now.toISOString();
    this.health.delete(r.id);
    if (r.currentWave === r.waves.length - 1) {
      r.state = 'completed';
      r.finishedAt = now.toISOString();
      r.reason = 'every wave passed';
      return true;
    }
    r.currentWave++;
    return false;
  }

  /** Records the rollback and sets every reached agent's target back to its earlier version. */
  private async rollBackNow(id: string, reason: string, actor: string): Promise<RolloutRecord> {
    // Two judgements of one failure may race here: only the one that records it acts on it.
    let decided = false;
    const r = await this.mutate(
      id,
      { actor, action: 'rollout.rollback', target: id, details: { reason } },
      (r) => {
        if (r.state === 'rolled-back') return false;
        decided = true;
        const wave = r.waves[r.currentWave];
        if (wave.state === 'running') {
          wave.state = 'failed';
          wave.endedAt = new Date().toISOString();
          wave.note = reason;
        }
        r.state = 'rolled-back';
        r.reason = reason;
        r.finishedAt = new Date().toISOString();
        // Every agent of a wave that started has the version as its target, whether it got it
        // yet or not (one away now would get it on its return): all of them go back.
        for (const a of Object.values(r.agents)) {
          if (!waveStarted(r, a.wave)) continue;
          if (a.previousVersion === null) {
            a.state = 'rolled-back';
            a.reason = 'ran no earlier version of the model; it keeps this one until another is deployed';
          } else {
            a.state = 'rolling-back';
            delete a.reason;
          }
          a.updatedAt = new Date().toISOString();
        }
      },
    );
    if (!decided) return this.live.get(id) ?? r;
    this.log.warn('rollout rolled back', { rollout: id, model: r.model, version: r.version, reason });
    await this.reissueTargets(r);
    return this.live.get(id) ?? r;
  }

  /** Sets the targets a rollout's state asks for: the version for a running wave, the earlier ones for a rollback. */
  private async reissueTargets(r: RolloutRecord): Promise<void> {
    if (r.state === 'rolled-back') {
      const byVersion = new Map<number, string[]>();
      for (const a of Object.values(r.agents)) {
        if (a.state !== 'rolling-back' || a.previousVersion === null) continue;
        byVersion.set(a.previousVersion, [...(byVersion.get(a.previousVersion) ?? []), a.id]);
      }
      for (const [version, agents] of byVersion) {
        await this.opts.deployments.deployTo(r.model, version, agents, { rollout: r.id });
      }
      return;
    }
    const reached = Object.values(r.agents).filter((a) => waveStarted(r, a.wave));
    if (reached.length > 0) {
      await this.opts.deployments.deployTo(
        r.model,
        r.version,
        reached.map((a) => a.id),
        { rollout: r.id },
      );
    }
  }
}

/** Whether wave `wave` of `r` has started (its agents have the version as their target). */
function waveStarted(r: RolloutRecord, wave: number): boolean {
  return wave < r.currentWave || (wave === r.currentWave && r.waves[wave].state !== 'pending');
}

function notFound(id: string): LoomError {
  return new LoomError('LOOM_ERR_NOT_FOUND', `no rollout with id ${String(id).slice(0, 80)}`);
}

function stateError(r: RolloutRecord, what: string, needed: string): LoomError {
  return new LoomError(
    'LOOM_ERR_ROLLOUT_STATE',
    `cannot ${what} rollout ${r.id}: it is ${r.state}, not ${needed}`,
    {
      details: { state: r.state },
    },
  );
}

// Pushes registry versions to agents. A model has a fleet-wide target (what every agent runs)
// and may have per-agent targets that override it (what a rollout, or its rollback, set for one
// agent). Connected agents get their target at once, agents that connect later on their hello;
// both kinds of target survive restarts. Each step of a push is told to listeners (sent, written
// to the socket, acknowledged), so a rollout can follow every agent.
import { EventEmitter } from 'node:events';
import type { Logger } from '../../shared/log/index.ts';
import { encodeTensorBytes, type ModelRef, signDeployment } from '../../shared/protocol/index.ts';
import { sha256Hex } from '../../shared/tensors/index.ts';
import type { AgentDirectory } from '../directory/index.ts';
import type { AgentGateway, AgentSessionInfo } from '../gateway/index.ts';
import type { ModelRegistry } from '../registry/index.ts';
import {
  type AuditEvent,
  type CoordinatorDb,
  jsonSublevel,
  type StoreOp,
  SUBLEVEL,
  withStoreErrors,
} from '../store/index.ts';

/** The fleet-wide target of a model. */
export interface DeploymentTarget {
  model: string;
  version: number;
  deployedAt: string;
}

/** A target of one agent, overriding the fleet-wide one of its model. */
export interface AgentTarget {
  agentId: string;
  model: string;
  version: number;
  setAt: string;
  /** The rollout that set it, if one did. */
  rollout?: string;
}

/** What happened to one push of `model`@`version` to one agent. */
export interface DeploymentProgress {
  agentId: string;
  model: string;
  version: number;
}

export interface DeploymentEvents {
  /**
   * The deployment is being sent (its frames are queued on the agent's connection);
   * `resumedChunks` chunks were not sent again, the agent holding them from a cut transfer;
   * `activation`: only an `activate` went, the agent's store holding the version (no download).
   */
  sent: [DeploymentProgress & { resumedChunks: number; activation: boolean }];
  /** Its last frame was written to the socket: the agent now verifies and stores it. */
  written: [DeploymentProgress];
  /**
   * The agent acknowledged what was sent on its connection (ok or refused, with its reason), or
   * already ran that version as acknowledged before (`alreadyRunning`, nothing sent).
   */
  ack: [DeploymentProgress & { ok: boolean; error?: string; alreadyRunning?: boolean }];
}

interface DeployPayload {
  ref: ModelRef;
  bytes: Buffer;
  sha256: string;
  signature: Buffer;
}

export interface DeploymentServiceOptions {
  db: CoordinatorDb;
  gateway: AgentGateway;
  registry: ModelRegistry;
  /** Where the versions each agent acknowledged are recorded. */
  agents: AgentDirectory;
  /** Signs every deployment; agents verify it against their pinned CA. */
  signer: { certPem: string; keyPem: string };
  log: Logger;
}

/** Options of `deployTo`. */
export interface DeployToOptions {
  /** The rollout the targets belong to (shown in the target). */
  rollout?: string;
  /** Audit entry committed with the targets. */
  audit?: AuditEvent;
}

function agentTargetKey(model: string, agentId: string): string {
  return `${encodeURIComponent(model)}/${agentId}`;
}

export class DeploymentService extends EventEmitter<DeploymentEvents> {
  private readonly targets;
  private readonly perAgent;
  /** Per-agent targets by agent id, then model: read once, then kept in step with every write. */
  private perAgentCache?: Promise<Map<string, Map<string, AgentTarget>>>;
  /**
   * The signed, encoded payload of the version last sent per model, kept as a promise so agents
   * that connect together share one registry read, encoding and signature.
   */
  private readonly payloads = new Map<string, { version: number; payload: Promise<DeployPayload> }>();
  private readonly log: Logger;

  constructor(private readonly opts: DeploymentServiceOptions) {
    super();
    this.targets = jsonSublevel<DeploymentTarget>(opts.db.root, SUBLEVEL.deployments);
    this.perAgent = jsonSublevel<AgentTarget>(opts.db.root, SUBLEVEL.agentTargets);
    this.log = opts.log;
    opts.gateway.on('online', (info) => {
      this.pushAll(info).catch((err: unknown) =>
        this.log.error('deployment push failed', { agent: info.agentId, error: String(err) }),
      );
    });
    opts.gateway.on('deploy-ack', (ack) => {
      if (ack.ok) {
        this.log.info('agent runs model version', {
          agent: ack.agentId,
          model: ack.name,
          version: ack.version,
        });
        // What it acknowledged on this connection is what it runs now: a later push of the same
        // version (a completed rollout setting the fleet target, say) sends nothing again.
        const session = opts.gateway.session(ack.agentId);
        session?.info.claimedModels.set(ack.name, ack.version);
        this.recordAck(ack.agentId, ack.name, ack.version)
          .catch((err: unknown) =>
            this.log.warn('could not record a deployment ack', { agent: ack.agentId, error: String(err) }),
          )
          .finally(() =>
            this.emit('ack', { agentId: ack.agentId, model: ack.name, version: ack.version, ok: true }),
          );
      } else if (ack.activation) {
        // The store did not hold it after all (pruned, damaged): the weights go in full.
        this.log.info('agent cannot activate a stored version; sending it', {
          agent: ack.agentId,
          model: ack.name,
          version: ack.version,
          error: ack.error,
        });
        const info = opts.gateway.session(ack.agentId)?.info;
        info?.stored.delete(`${ack.name}@${ack.version}`);
        if (info) void this.pushOrLog(info, ack.name, ack.version);
      } else {
        this.log.warn('agent refused model version', {
          agent: ack.agentId,
          model: ack.name,
          error: ack.error,
        });
        this.emit('ack', {
          agentId: ack.agentId,
          model: ack.name,
          version: ack.version,
          ok: false,
          error: ack.error ?? 'refused without a reason',
        });
      }
    });
  }

  /**
   * Makes `version` the one every agent runs for `model` (clearing per-agent targets of the model)
   * and pushes it to connected agents now.
   */
  async deploy(model: string, version: number): Promise<DeploymentTarget> {
    await this.opts.registry.getVersion(model, version);
    const target: DeploymentTarget = { model, version, deployedAt: new Date().toISOString() };
    const cache = await this.agentTargets();
    const cleared = [...cache.values()].flatMap((byModel) => {
      const t = byModel.get(model);
      return t ? [t] : [];
    });
    await withStoreErrors('save a deployment', () =>
      this.opts.db.commit([
        { type: 'put', sublevel: this.targets, key: model, value: target },
        ...cleared.map(
          (t): StoreOp => ({ type: 'del', sublevel: this.perAgent, key: agentTargetKey(model, t.agentId) }),
        ),
      ]),
    );
    for (const t of cleared) cache.get(t.agentId)?.delete(model);
    this.log.info('deploying model version', {
      model,
      version,
      agents: this.opts.gateway.onlineAgentIds().length,
    });
    await Promise.all(this.opts.gateway.sessionInfos().map((info) => this.pushOrLog(info, model, version)));
    return target;
  }

  /**
   * Makes `version` the target of `model` on each of `agentIds` (overriding the fleet-wide
   * target), durably and in one batch, then pushes it to those connected now; the others get it
   * when they connect.
   */
  async deployTo(
    model: string,
    version: number,
    agentIds: readonly string[],
    options: DeployToOptions = {},
  ): Promise<AgentTarget[]> {
    await this.opts.registry.getVersion(model, version);
    const setAt = new Date().toISOString();
    const targets = agentIds.map(
      (agentId): AgentTarget => ({
        agentId,
        model,
        version,
        setAt,
        ...(options.rollout ? { rollout: options.rollout } : {}),
      }),
    );
    await withStoreErrors('save deployment targets', () =>
      this.opts.db.commit(
        targets.map(
          (t): StoreOp => ({
            type: 'put',
            sublevel: this.perAgent,
            key: agentTargetKey(model, t.agentId),
            value: t,
          }),
        ),
        options.audit ? { audit: options.audit } : {},
      ),
    );
    const cache = await this.agentTargets();
    for (const t of targets) {
      let byModel = cache.get(t.agentId);
      if (!byModel) {
        byModel = new Map();
        cache.set(t.agentId, byModel);
      }
      byModel.set(model, t);
    }
    await Promise.all(
      agentIds.map((id) => {
        const info = this.opts.gateway.session(id)?.info;
        return info ? this.pushOrLog(info, model, version) : undefined;
      }),
    );
    return targets;
  }

  /** Fleet-wide targets, by model. */
  async list(): Promise<DeploymentTarget[]> {
    return this.targets.values().all();
  }

  /** The fleet-wide target of `model`. */
  async get(model: string): Promise<DeploymentTarget | undefined> {
    return this.targets.get(model);
  }

  /** The version `agentId` should run for `model`: its own target, else the fleet-wide one. */
  async targetOf(agentId: string, model: string): Promise<number | undefined> {
    const own = (await this.agentTargets()).get(agentId)?.get(model);
    return own?.version ?? (await this.get(model))?.version;
  }

  /** An acknowledged version becomes what the fleet view shows the agent running. */
  private async recordAck(agentId: string, model: string, version: number): Promise<void> {
    const agent = await this.opts.agents.get(agentId);
    await this.opts.agents.update(agentId, { models: { ...agent.models, [model]: version } });
  }

  private agentTargets(): Promise<Map<string, Map<string, AgentTarget>>> {
    this.perAgentCache ??= withStoreErrors('read deployment targets', async () => {
      const byAgent = new Map<string, Map<string, AgentTarget>>();
      for (const t of await this.perAgent.values().all()) {
        let byModel = byAgent.get(t.agentId);
        if (!byModel) {
          byModel = new Map();
          byAgent.set(t.agentId, byModel);
        }
        byModel.set(t.model, t);
      }
      return byAgent;
    });
    this.perAgentCache.catch(() => {
      this.perAgentCache = undefined;
    });
    return this.perAgentCache;
  }

  /** Every target of one agent that just connected: its own ones, and the fleet's for the rest. */
  private async pushAll(info: AgentSessionInfo): Promise<void> {
    const own = (await this.agentTargets()).get(info.agentId) ?? new Map<string, AgentTarget>();
    const versions = new Map<string, number>();
    for (const t of await this.list()) versions.set(t.model, t.version);
    for (const t of own.values()) versions.set(t.model, t.version);
    for (const [model, version] of versions) await this.pushOrLog(info, model, version);
  }

  /** One agent that cannot take a deployment (it just left, say) must not stop the others. */
  private async pushOrLog(info: AgentSessionInfo, model: string, version: number): Promise<void> {
    try {
      await this.push(info, model, version);
    } catch (err) {
      this.log.warn('could not push model version', {
        agent: info.agentId,
        model,
        version,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private payloadFor(model: string, version: number): Promise<DeployPayload> {
    const cached = this.payloads.get(model);
    if (cached?.version === version) return cached.payload;
    const payload = (async (): Promise<DeployPayload> => {
      const record = await this.opts.registry.getModel(model);
      const weights = await this.opts.registry.getWeights(model, version);
      const bytes = encodeTensorBytes(weights);
      const sha256 = sha256Hex(bytes);
      const ref = { name: model, version, architecture: record.architecture };
      return { ref, bytes, sha256, signature: signDeployment(ref, sha256, this.opts.signer.keyPem) };
    })();
    this.payloads.set(model, { version, payload });
    // A failed read is not cached: the next push tries again.
    payload.catch(() => {
      if (this.payloads.get(model)?.payload === payload) this.payloads.delete(model);
    });
    return payload;
  }

  private async push(info: AgentSessionInfo, model: string, version: number): Promise<void> {
    // Skipped only when the agent says it holds the version and it once acknowledged receiving
    // it from here: a claim alone does not stop the coordinator from sending the real thing.
    if (info.claimedModels.get(model) === version) {
      const record = await this.opts.agents.find(info.agentId);
      if (record?.models?.[model] === version) {
        this.emit('ack', { agentId: info.agentId, model, version, ok: true, alreadyRunning: true });
        return;
      }
    }
    const payload = await this.payloadFor(model, version);
    const session = this.opts.gateway.session(info.agentId);
    if (!session || session.isClosed) return;
    const progress: DeploymentProgress = { agentId: info.agentId, model, version };
    const signed = {
      model: payload.ref,
      sha256: payload.sha256,
      signature: payload.signature,
      signerCertificate: this.opts.signer.certPem,
    };
    if (info.stored.has(`${model}@${version}`)) {
      session.sendActivate(signed, () => this.emit('written', progress));
      this.emit('sent', { ...progress, resumedChunks: 0, activation: true });
      return;
    }
    const { resumedChunks } = session.sendDeploy(
      {
        model: payload.ref,
        weights: payload.bytes,
        sha256: payload.sha256,
        signature: payload.signature,
        signerCertificate: this.opts.signer.certPem,
      },
      () => this.emit('written', progress),
    );
    if (resumedChunks > 0)
      this.log.info('transfer resumed', { agent: info.agentId, model, version, resumedChunks });
    this.emit('sent', { ...progress, resumedChunks, activation: false });
  }
}

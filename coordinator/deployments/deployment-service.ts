// Pushes registry versions to agents: every connected agent gets the target version of each
// deployed model, and agents that connect later get it on their hello. Targets survive restarts.
import type { Logger } from '../../shared/log/index.ts';
import { encodeTensorBytes, type ModelRef, signDeployment } from '../../shared/protocol/index.ts';
import { sha256Hex } from '../../shared/tensors/index.ts';
import type { AgentDirectory } from '../directory/index.ts';
import type { AgentGateway, AgentSessionInfo } from '../gateway/index.ts';
import type { ModelRegistry } from '../registry/index.ts';
import { type CoordinatorDb, jsonSublevel, SUBLEVEL, withStoreErrors } from '../store/index.ts';

export interface DeploymentTarget {
  model: string;
  version: number;
  deployedAt: string;
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

export class DeploymentService {
  private readonly targets;
  /**
   * The signed, encoded payload of the newest target per model, kept as a promise so agents that
   * connect together share one registry read, encoding and signature.
   */
  private readonly payloads = new Map<string, { version: number; payload: Promise<DeployPayload> }>();
  private readonly log: Logger;

  constructor(private readonly opts: DeploymentServiceOptions) {
    this.targets = jsonSublevel<DeploymentTarget>(opts.db.root, SUBLEVEL.deployments);
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
        this.recordAck(ack.agentId, ack.name, ack.version).catch((err: unknown) =>
          this.log.warn('could not record a deployment ack', { agent: ack.agentId, error: String(err) }),
        );
      } else
        this.log.warn('agent refused model version', {
          agent: ack.agentId,
          model: ack.name,
          error: ack.error,
        });
    });
  }

  /** Makes `version` the one every agent runs for `model`, and pushes it to connected agents now. */
  async deploy(model: string, version: number): Promise<DeploymentTarget> {
    await this.opts.registry.getVersion(model, version);
    const target: DeploymentTarget = { model, version, deployedAt: new Date().toISOString() };
    await withStoreErrors('save a deployment', () =>
      this.opts.db.commit([{ type: 'put', sublevel: this.targets, key: model, value: target }]),
    );
    this.log.info('deploying model version', {
      model,
      version,
      agents: this.opts.gateway.onlineAgentIds().length,
    });
    await Promise.all(this.opts.gateway.sessionInfos().map((info) => this.pushOrLog(info, target)));
    return target;
  }

  async list(): Promise<DeploymentTarget[]> {
    return this.targets.values().all();
  }

  async get(model: string): Promise<DeploymentTarget | undefined> {
    return this.targets.get(model);
  }

  /** An acknowledged version becomes what the fleet view shows the agent running. */
  private async recordAck(agentId: string, model: string, version: number): Promise<void> {
    const agent = await this.opts.agents.get(agentId);
    await this.opts.agents.update(agentId, { models: { ...agent.models, [model]: version } });
  }

  private async pushAll(info: AgentSessionInfo): Promise<void> {
    for (const target of await this.list()) await this.pushOrLog(info, target);
  }

  /** One agent that cannot take a deployment (it just left, say) must not stop the others. */
  private async pushOrLog(info: AgentSessionInfo, target: DeploymentTarget): Promise<void> {
    try {
      await this.push(info, target);
    } catch (err) {
      this.log.warn('could not push model version', {
        agent: info.agentId,
        model: target.model,
        version: target.version,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private payloadFor(target: DeploymentTarget): Promise<DeployPayload> {
    const cached = this.payloads.get(target.model);
    if (cached?.version === target.version) return cached.payload;
    const payload = (async (): Promise<DeployPayload> => {
      const model = await this.opts.registry.getModel(target.model);
      const weights = await this.opts.registry.getWeights(target.model, target.version);
      const bytes = encodeTensorBytes(weights);
      const sha256 = sha256Hex(bytes);
      const ref = { name: target.model, version: target.version, architecture: model.architecture };
      return { ref, bytes, sha256, signature: signDeployment(ref, sha256, this.opts.signer.keyPem) };
    })();
    this.payloads.set(target.model, { version: target.version, payload });
    // A failed read is not cached: the next push tries again.
    payload.catch(() => {
      if (this.payloads.get(target.model)?.payload === payload) this.payloads.delete(target.model);
    });
    return payload;
  }

  private async push(info: AgentSessionInfo, target: DeploymentTarget): Promise<void> {
    // Skipped only when the agent says it holds the version and it once acknowledged receiving
    // it from here: a claim alone does not stop the coordinator from sending the real thing.
    if (info.claimedModels.get(target.model) === target.version) {
      const record = await this.opts.agents.find(info.agentId);
      if (record?.models?.[target.model] === target.version) return;
    }
    const payload = await this.payloadFor(target);
    const session = this.opts.gateway.session(info.agentId);
    if (!session || session.isClosed) return;
    session.sendDeploy({
      model: payload.ref,
      weights: payload.bytes,
      sha256: payload.sha256,
      signature: payload.signature,
      signerCertificate: this.opts.signer.certPem,
    });
  }
}

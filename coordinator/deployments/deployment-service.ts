// Pushes registry versions to agents: every connected agent gets the target version of each
// deployed model, and agents that connect later get it on their hello. Targets survive restarts.
import type { Logger } from '../../shared/log/index.ts';
import { encodeTensorBytes, signDeployment } from '../../shared/protocol/index.ts';
import { sha256Hex } from '../../shared/tensors/index.ts';
import type { AgentGateway, AgentSessionInfo } from '../gateway/index.ts';
import type { ModelRegistry } from '../registry/index.ts';
import type { CoordinatorDb } from '../store/index.ts';

export interface DeploymentTarget {
  model: string;
  version: number;
  deployedAt: string;
}

export interface DeploymentServiceOptions {
  db: CoordinatorDb;
  gateway: AgentGateway;
  registry: ModelRegistry;
  /** Signs every deployment; agents verify it against their pinned CA. */
  signer: { certPem: string; keyPem: string };
  log: Logger;
}

export class DeploymentService {
  private readonly targets;
  /** The encoded payload of the newest target per model: encoded once, sent to every agent. */
  private readonly payloads = new Map<
    string,
    { version: number; bytes: Buffer; sha256: string; signature: Buffer }
  >();
  private readonly log: Logger;

  constructor(private readonly opts: DeploymentServiceOptions) {
    this.targets = opts.db.root.sublevel<string, DeploymentTarget>('deployments', { valueEncoding: 'json' });
    this.log = opts.log;
    opts.gateway.on('online', (info) => {
      this.pushAll(info).catch((err: unknown) =>
        this.log.error('deployment push failed', { agent: info.agentId, error: String(err) }),
      );
    });
    opts.gateway.on('deploy-ack', (ack) => {
      if (ack.ok)
        this.log.info('agent runs model version', {
          agent: ack.agentId,
          model: ack.name,
          version: ack.version,
        });
      else
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
    await this.targets.put(model, target);
    this.log.info('deploying model version', {
      model,
      version,
      agents: this.opts.gateway.onlineAgentIds().length,
    });
    for (const info of this.opts.gateway.sessionInfos()) await this.push(info, target);
    return target;
  }

  async list(): Promise<DeploymentTarget[]> {
    return this.targets.values().all();
  }

  async get(model: string): Promise<DeploymentTarget | undefined> {
    return this.targets.get(model);
  }

  private async pushAll(info: AgentSessionInfo): Promise<void> {
    for (const target of await this.list()) await this.push(info, target);
  }

  private async push(info: AgentSessionInfo, target: DeploymentTarget): Promise<void> {
    if (info.models.get(target.model) === target.version) return;
    const session = this.opts.gateway.session(info.agentId);
    if (!session || session.isClosed) return;
    const model = await this.opts.registry.getModel(target.model);
    let payload = this.payloads.get(target.model);
    if (payload?.version !== target.version) {
      const weights = await this.opts.registry.getWeights(target.model, target.version);
      const bytes = encodeTensorBytes(weights);
      const sha256 = sha256Hex(bytes);
      const ref = { name: target.model, version: target.version, architecture: model.architecture };
      payload = {
        version: target.version,
        bytes,
        sha256,
        signature: signDeployment(ref, sha256, this.opts.signer.keyPem),
      };
      this.payloads.set(target.model, payload);
    }
    session.send('deploy', {
      model: { name: target.model, version: target.version, architecture: model.architecture },
      weights: payload.bytes,
      sha256: payload.sha256,
      signature: payload.signature,
      signerCertificate: this.opts.signer.certPem,
    });
  }
}

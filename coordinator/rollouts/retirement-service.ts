// Retirement: a model version is retired in favour of a successor. The agents that run it move to
// the successor through a rollout; every agent is told (now, and at each connection) so that an
// inference call naming the retired version carries deprecation headers until the sunset and
// answers 410 after it. Recorded in its own sublevel; the registry's version records are untouched.
import { LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { RetirementBody } from '../../shared/protocol/index.ts';
import type { DeploymentService } from '../deployments/index.ts';
import type { AgentDirectory } from '../directory/index.ts';
import type { AgentGateway } from '../gateway/index.ts';
import type { ModelRegistry } from '../registry/index.ts';
import { type CoordinatorDb, jsonSublevel, SUBLEVEL, withStoreErrors } from '../store/index.ts';
import { ROLLOUT_DEFAULTS } from './rollout-record.ts';
import type { RolloutService } from './rollout-service.ts';

export interface RetirementRecord {
  model: string;
  version: number;
  successor: number;
  graceSec: number;
  deprecatedAt: string;
  sunsetAt: string;
  retiredBy: string;
  /** The rollout that moves the agents running the version to its successor (null: none ran it). */
  rollout: string | null;
}

/** Default grace period of a retirement: 7 days. */
export const RETIREMENT_DEFAULTS = { graceSec: 7 * 86_400, maxGraceSec: 365 * 86_400 } as const;

export interface RetirementServiceOptions {
  db: CoordinatorDb;
  registry: ModelRegistry;
  agents: AgentDirectory;
  deployments: DeploymentService;
  rollouts: RolloutService;
  gateway: AgentGateway;
  log: Logger;
}

function key(model: string, version: number): string {
  return `${encodeURIComponent(model)}/${String(version).padStart(12, '0')}`;
}

function wire(r: RetirementRecord): RetirementBody {
  return {
    name: r.model,
    version: r.version,
    successor: r.successor,
    deprecatedAt: r.deprecatedAt,
    sunsetAt: r.sunsetAt,
  };
}

export class RetirementService {
  private readonly retirements;

  constructor(private readonly opts: RetirementServiceOptions) {
    this.retirements = jsonSublevel<RetirementRecord>(opts.db.root, SUBLEVEL.retirements);
    opts.gateway.on('online', (info) => {
      this.list()
        .then((all) => {
          const session = opts.gateway.session(info.agentId);
          for (const r of all) if (session && !session.isClosed) session.send('retirement', wire(r));
        })
        .catch((err: unknown) =>
          opts.log.warn('could not tell an agent of retirements', {
            agent: info.agentId,
            error: String(err),
          }),
        );
    });
  }

  /**
   * Retires `model`@`version` in favour of `successor` with a grace period of `graceSec`
   * (default 7 days), and starts a rollout of the successor to the agents that run the version.
   * LOOM_ERR_NOT_FOUND for an unknown model or version, LOOM_ERR_INVALID_ARGUMENT for a successor
   * that is the version itself or retired too, LOOM_ERR_CONFLICT when it is retired already,
   * LOOM_ERR_ROLLOUT_ACTIVE while the model has another rollout in progress.
   */
  async retire(
    model: string,
    version: number,
    options: { successor: number; graceSec?: number },
    actor: string,
  ): Promise<RetirementRecord> {
    await this.opts.registry.getVersion(model, version);
    await this.opts.registry.getVersion(model, options.successor);
    if (options.successor === version) {
      throw new LoomError(
        'LOOM_ERR_INVALID_ARGUMENT',
        'successor must be another version than the one retired',
        {
          details: { field: 'successor' },
        },
      );
    }
    return this.opts.db.locks.run(`retire:${model}`, async () => {
      if (await this.find(model, version)) {
        throw new LoomError('LOOM_ERR_CONFLICT', `model "${model}" version ${version} is retired already`);
      }
      if (await this.find(model, options.successor)) {
        throw new LoomError(
          'LOOM_ERR_INVALID_ARGUMENT',
          `successor version ${options.successor} is retired itself`,
          {
            details: { field: 'successor' },
          },
        );
      }
      const running = [];
      for (const a of await this.opts.agents.list()) {
        if (a.revoked) continue;
        if (
          a.models?.[model] === version ||
          (await this.opts.deployments.targetOf(a.id, model)) === version
        ) {
          running.push(a.id);
        }
      }
      const rollout =
        running.length === 0
          ? null
          : await this.opts.rollouts.create(
              {
                model,
                version: options.successor,
                target: { agents: running },
                waves: [100],
                policy: { ...ROLLOUT_DEFAULTS },
              },
              actor,
              { retiring: version },
            );
      const now = new Date();
      const graceSec = options.graceSec ?? RETIREMENT_DEFAULTS.graceSec;
      const record: RetirementRecord = {
        model,
        version,
        successor: options.successor,
        graceSec,
        deprecatedAt: now.toISOString(),
        sunsetAt: new Date(now.getTime() + graceSec * 1000).toISOString(),
        retiredBy: actor,
        rollout: rollout?.id ?? null,
      };
      await withStoreErrors('save a retirement', () =>
        this.opts.db.commit(
          [{ type: 'put', sublevel: this.retirements, key: key(model, version), value: record }],
          {
            audit: {
              actor,
              action: 'model.retire',
              target: `${model}@${version}`,
              details: { successor: record.successor, graceSec, rollout: record.rollout },
            },
          },
        ),
      );
      for (const info of this.opts.gateway.sessionInfos()) {
        const session = this.opts.gateway.session(info.agentId);
        if (session && !session.isClosed) session.send('retirement', wire(record));
      }
      this.opts.log.info('model version retired', {
        model,
        version,
        successor: record.successor,
        sunset: record.sunsetAt,
      });
      return record;
    });
  }

  /** The retirement of `model`@`version`, if it is retired. */
  async find(model: string, version: number): Promise<RetirementRecord | undefined> {
    return withStoreErrors('read a retirement', () => this.retirements.get(key(model, version)));
  }

  /** Every retirement, by model then version. */
  async list(): Promise<RetirementRecord[]> {
    return withStoreErrors('list retirements', () => this.retirements.values().all());
  }
}

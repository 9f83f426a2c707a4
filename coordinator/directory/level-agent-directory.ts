// LevelDB implementation of the agent directory.
import { LoomError } from '../../shared/errors/index.ts';
import {
  type CoordinatorDb,
  jsonSublevel,
  type StoreOp,
  SUBLEVEL,
  type WriteOptions,
  withStoreErrors,
} from '../store/index.ts';
import type { AgentDirectory, AgentPatch, AgentRecord } from './agent-directory.ts';
import { assertRecordId } from './record-id.ts';

function agentLock(id: string): string {
  return `agent:${id}`;
}

/** Copies the defined fields of `patch` over `record`; `id` can never change. */
function applyPatch(record: AgentRecord, patch: AgentPatch): AgentRecord {
  const next: Record<string, unknown> = { ...record };
  for (const [field, value] of Object.entries(patch)) {
    if (field !== 'id' && value !== undefined) next[field] = value;
  }
  return next as unknown as AgentRecord;
}

/** An `AgentDirectory` on the coordinator's LevelDB database, keyed by agent id. */
export function createLevelAgentDirectory(db: CoordinatorDb): AgentDirectory {
  const agents = jsonSublevel<AgentRecord>(db.root, SUBLEVEL.agents);

  async function find(id: string): Promise<AgentRecord | undefined> {
    assertRecordId(id, 'agent');
    return withStoreErrors(`read agent ${id}`, () => agents.get(id));
  }

  async function get(id: string): Promise<AgentRecord> {
    const agent = await find(id);
    if (agent === undefined) {
      throw new LoomError('LOOM_ERR_NOT_FOUND', `no agent with id ${id}`, { details: { agent: id } });
    }
    return agent;
  }

  /**
   * Read-modify-write of one agent under its lock, so concurrent updates do not lose fields.
   * Durable changes are committed (fsync'd, with their audit entry); bookkeeping is a plain put.
   */
  function modify(
    id: string,
    change: (agent: AgentRecord) => AgentRecord | undefined,
    durable: WriteOptions | false,
  ): Promise<AgentRecord> {
    return db.locks.run(agentLock(id), async () => {
      const agent = await get(id);
      const next = change(agent);
      if (next === undefined) {
        // Nothing to change (revoked already, say), but the call itself is still audited.
        if (durable !== false && durable.audit) await db.commit([], { audit: durable.audit });
        return agent;
      }
      if (durable === false) await withStoreErrors(`update agent ${id}`, () => agents.put(id, next));
      else {
        const { alongside = [], ...commit } = durable;
        await db.commit([{ type: 'put', sublevel: agents, key: id, value: next }, ...alongside], commit);
      }
      return next;
    });
  }

  async function addOps(a: AgentRecord): Promise<StoreOp[]> {
    assertRecordId(a.id, 'agent');
    if (await withStoreErrors(`read agent ${a.id}`, () => agents.has(a.id))) {
      throw new LoomError('LOOM_ERR_CONFLICT', `an agent with id ${a.id} already exists`);
    }
    return [{ type: 'put', sublevel: agents, key: a.id, value: { ...a } }];
  }

  return {
    async add(a: AgentRecord, options: WriteOptions = {}) {
      await db.locks.run(agentLock(a.id), async () => {
        const { alongside = [], ...commit } = options;
        await db.commit([...(await addOps(a)), ...alongside], commit);
      });
    },
    addOps,
    get,
    find,
    async list() {
      return withStoreErrors('list agents', () => agents.values().all());
    },
    async update(id: string, patch: AgentPatch) {
      return modify(id, (agent) => applyPatch(agent, patch), false);
    },
    async revoke(id: string, at: Date = new Date(), options: WriteOptions = {}) {
      return modify(
        id,
        (agent) => (agent.revoked ? undefined : { ...agent, revoked: true, revokedAt: at.toISOString() }),
        options,
      );
    },
    async setLabels(id: string, labels: Record<string, string>, options: WriteOptions = {}) {
      return modify(id, (agent) => ({ ...agent, labels: { ...labels } }), options);
    },
    async setPendingCertificate(id: string, serial: string, notAfter: string) {
      return modify(
        id,
        (agent) => ({ ...agent, pendingCertSerial: serial, pendingCertNotAfter: notAfter }),
        {},
      );
    },
    async promotePendingCertificate(id: string) {
      return modify(
        id,
        (agent) => {
          if (!agent.pendingCertSerial) return undefined;
          const { pendingCertSerial, pendingCertNotAfter, ...rest } = agent;
          return {
            ...rest,
            certSerial: pendingCertSerial,
            certNotAfter: pendingCertNotAfter ?? agent.certNotAfter,
          };
        },
        {},
      );
    },
  };
}

// The operator API as the fuzzer calls it: createApiApp over real stores on a real LevelDB in a
// temp folder, wired as coordinator/coordinator.ts wires them (the agent gateway is built but never
// listens). Every case starts from the same fixture state, restored after a case that changed it.
import { join } from 'node:path';
import type { Hono } from 'hono';
import { createApiToken, createKeyAndCsr, RevocationList } from '../../../certs/index.ts';
import { type ApiDeps, type ApiEnv, createApiApp } from '../../../coordinator/api/index.ts';
import { type AuditLog, createLevelAuditLog } from '../../../coordinator/audit/index.ts';
import { DeploymentService } from '../../../coordinator/deployments/index.ts';
import {
  type AgentDirectory,
  type ApiTokenRecord,
  createLevelAgentDirectory,
  createLevelTokenStore,
  type Role,
  type TokenStore,
} from '../../../coordinator/directory/index.ts';
import { EnrollmentService } from '../../../coordinator/enrollment/index.ts';
import { createLevelEvaluationStore, EvaluationService } from '../../../coordinator/evaluations/index.ts';
import { AgentGateway } from '../../../coordinator/gateway/index.ts';
import { createLevelJobStore, JobService, parseJobConfig } from '../../../coordinator/jobs/index.ts';
import { createLevelLifecycleStore, LifecycleService } from '../../../coordinator/lifecycle/index.ts';
import { createLevelRegistry, type ModelRegistry } from '../../../coordinator/registry/index.ts';
import { RetirementService, RolloutService } from '../../../coordinator/rollouts/index.ts';
import {
  coordinatorKeyProvider,
  initCoordinator,
  loadCoordinatorPki,
  openDataDirDb,
  openStoreDataKey,
} from '../../../coordinator/setup/index.ts';
import type { CoordinatorDb } from '../../../coordinator/store/index.ts';
import { initCompute } from '../../../shared/compute/index.ts';
import { createLogger } from '../../../shared/log/index.ts';
import { initialWeights, type ModelArchitecture } from '../../../shared/models/index.ts';
import type { WeightTensor } from '../../../shared/tensors/index.ts';
import { makeTempDir, removeTempDir } from '../harness/temp-dirs.ts';
import { FUZZ_MAX_MODEL_BYTES, tinyTopology } from './api-fixtures.ts';

/** Fixture ids the generated requests name; created afresh at every reset. */
export const FIXTURE = {
  agent: 'agent-fuzz00000001',
  revokedAgent: 'agent-fuzz0000dead',
  mlpModel: 'fuzz-mlp',
  tfjsModel: 'fuzz-tfjs',
  finishedJob: 'job-fuzz-finished',
} as const;

/** Who a generated request says it is. */
export type Caller = 'admin' | 'operator' | 'viewer' | 'revoked' | 'none';

const MLP: ModelArchitecture = { kind: 'mlp', inputShape: [4], layers: [5, 3], activation: 'relu' };

export interface ApiContext {
  dir: string;
  db: CoordinatorDb;
  app: Hono<ApiEnv>;
  deps: ApiDeps;
  /** Bearer tokens of the fixture callers (`none` sends no header). */
  bearer: Record<Exclude<Caller, 'none'>, string>;
  tokenIds: Record<Exclude<Caller, 'none'>, string>;
  /** A valid CSR, signed anew by every successful enrollment. */
  csrPem: string;
  /** The store digest right after the last reset. */
  fixtureDigest: string;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Every key and value of the database, values as base64: compared before and after a request. */
export async function storeSnapshot(db: CoordinatorDb): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [key, value] of db.root.iterator({ keyEncoding: 'utf8', valueEncoding: 'buffer' })) {
    out.set(key as string, (value as unknown as Buffer).toString('base64'));
  }
  return out;
}

export function digestOf(snapshot: Map<string, string>): string {
  return JSON.stringify([...snapshot]);
}

/** Everything the API runs on, built on one open database (rebuilt at every reset). */
interface Wiring {
  db: CoordinatorDb;
  deps: ApiDeps;
  jobs: JobService;
  gateway: AgentGateway;
}

export async function createApiContext(): Promise<ApiContext> {
  await initCompute();
  const dir = makeTempDir('api');
  const dataDir = join(dir, 'coordinator');
  const log = createLogger('silent');
  const init = await initCoordinator({ dataDir, hosts: ['localhost'] });
  const pki = await loadCoordinatorPki(dataDir);
  const keyProvider = coordinatorKeyProvider({ dataDir });

  const extra = (role: Role, name: string, revoked = false) => {
    const t = createApiToken();
    const record: ApiTokenRecord = {
      id: t.id,
      hash: t.hash,
      role,
      name,
      createdAt: new Date(0).toISOString(),
      ...(revoked ? { revoked: true, revokedAt: new Date(0).toISOString() } : {}),
    };
    return { token: t.token, record };
  };
  const operator = extra('operator', 'fuzz operator');
  const viewer = extra('viewer', 'fuzz viewer');
  const revoked = extra('operator', 'fuzz revoked', true);
  const { csrPem } = createKeyAndCsr({ commonName: 'fuzz-agent' });
  const mlpWeights = await initialWeights(MLP);
  const tfjsArch: ModelArchitecture = { kind: 'tfjs', topology: tinyTopology() };
  const tfjsWeights = await initialWeights(tfjsArch);
  const shift = (ws: WeightTensor[]): WeightTensor[] =>
    ws.map((w) => ({ ...w, data: w.data.map((x) => x + 1) }));

  /** The services on `db`, as coordinator/coordinator.ts wires them (the gateway never listens). */
  async function wire(db: CoordinatorDb): Promise<Wiring> {
    // Weight blobs are encrypted at rest with the data key init made, as the coordinator opens it.
    const dataKey = await openStoreDataKey(db, keyProvider);
    const registry: ModelRegistry = createLevelRegistry(db, { dataKey });
    const agents: AgentDirectory = createLevelAgentDirectory(db);
    const tokens: TokenStore = createLevelTokenStore(db);
    const audit: AuditLog = createLevelAuditLog(db);
    const enrollment = new EnrollmentService({
      ca: pki.ca,
      caFingerprint: pki.caFingerprint,
      tokens,
      agents,
      certValiditySec: 86_400,
      tokenTtlSec: 3600,
    });
    const gateway = new AgentGateway({
      caCertPem: pki.ca.certPem,
      serverCertPem: pki.server.certPem,
      serverKeyPem: pki.server.keyPem,
      host: '127.0.0.1',
      port: 0,
      log,
      authorize: async () => ({ ok: false, status: 403, reason: 'fuzz gateway' }),
    });
    const deployments = new DeploymentService({ db, gateway, registry, agents, signer: pki.server, log });
    const jobs = new JobService({ store: createLevelJobStore(db), registry, pool: gateway, log });
    const rollouts = new RolloutService({ db, deployments, agents, registry, gateway, log });
    const retirements = new RetirementService({ db, registry, agents, deployments, rollouts, gateway, log });
    const evaluations = new EvaluationService({
      store: createLevelEvaluationStore(db),
      registry,
      pool: gateway,
      log,
    });
    const revocations = new RevocationList();
    revocations.revokeAgent(FIXTURE.revokedAgent, new Date(0));
    const deps: ApiDeps = {
      registry,
      jobs,
      agents,
      tokens,
      audit,
      enrollment,
      deployments,
      rollouts,
      retirements,
      evaluations,
      lifecycle: new LifecycleService({ store: createLevelLifecycleStore(db), registry, log }),
      gateway,
      caCertPem: pki.ca.certPem,
      caFingerprint: pki.caFingerprint,
      revocations,
      agentPort: () => 0,
      backend: () => 'fuzz',
      log,
    };
    return { db, deps, jobs, gateway };
  }

  /** The fixture records, written through the stores themselves (once; later resets copy the bytes). */
  async function seed({ deps, db }: Wiring): Promise<void> {
    const adminRecord = (await deps.tokens.listApiTokens())[0];
    tokenIds.admin = adminRecord.id;
    for (const record of [operator.record, viewer.record, revoked.record])
      await deps.tokens.addApiToken(record);
    const at = new Date(0).toISOString();
    await deps.agents.add({
      id: FIXTURE.agent,
      name: 'fuzz site',
      enrolledAt: at,
      certSerial: '0a01',
      certNotAfter: at,
      revoked: false,
    });
    await deps.agents.add({
      id: FIXTURE.revokedAgent,
      name: 'fuzz revoked site',
      enrolledAt: at,
      certSerial: '0a02',
      certNotAfter: at,
      revoked: true,
      revokedAt: at,
    });
    await deps.registry.createModel({
      name: FIXTURE.mlpModel,
      architecture: MLP,
      inputShape: mlpWeights.inputShape,
      classes: mlpWeights.classes,
      weights: mlpWeights.weights,
    });
    await deps.registry.addVersion({
      model: FIXTURE.mlpModel,
      parentVersion: 1,
      jobId: FIXTURE.finishedJob,
      round: 1,
      agents: [FIXTURE.agent],
      exampleCounts: { [FIXTURE.agent]: 10 },
      metrics: { loss: 0.5 },
      weights: shift(mlpWeights.weights),
    });
    await deps.registry.createModel({
      name: FIXTURE.tfjsModel,
      architecture: tfjsArch,
      inputShape: tfjsWeights.inputShape,
      classes: tfjsWeights.classes,
      weights: tfjsWeights.weights,
    });
    await createLevelJobStore(db).put({
      id: FIXTURE.finishedJob,
      config: parseJobConfig({ model: FIXTURE.mlpModel, rounds: 1 }),
      state: 'completed',
      createdAt: at,
      createdBy: 'fuzz',
      currentRound: 1,
      baseVersion: 1,
      latestVersion: 2,
      excludedAgents: {},
      warnings: [],
    });
  }

  async function unwire(w: Wiring | undefined): Promise<void> {
    if (!w) return;
    // Stopping the runners first: a job left running would keep writing to the store.
    await w.jobs.close();
    await w.deps.evaluations.close();
    await w.gateway.close();
    await w.db.close();
  }

  const tokenIds = {
    admin: '',
    operator: operator.record.id,
    viewer: viewer.record.id,
    revoked: revoked.record.id,
  };
  let wiring: Wiring | undefined;
  let fixture: Map<string, string> | undefined;

  const ctx: ApiContext = {
    dir,
    db: undefined as unknown as CoordinatorDb,
    app: undefined as unknown as Hono<ApiEnv>,
    deps: undefined as unknown as ApiDeps,
    bearer: {
      admin: init.adminToken,
      operator: operator.token,
      viewer: viewer.token,
      revoked: revoked.token,
    },
    tokenIds,
    csrPem,
    fixtureDigest: '',

    async reset() {
      await unwire(wiring);
      wiring = undefined;
      if (fixture === undefined) {
        const first = await wire(await openDataDirDb(dataDir));
        await seed(first);
        fixture = await storeSnapshot(first.db);
        await unwire(first);
      } else {
        // The fixture's bytes as first written, in one batch; the database is opened again after,
        // so what it keeps in memory (commit sequence, audit head) is read from them.
        const db = await openDataDirDb(dataDir);
        await db.root.clear();
        await db.root.batch(
          [...fixture].map(([key, value]) => ({
            type: 'put' as const,
            key,
            value: Buffer.from(value, 'base64') as unknown,
            keyEncoding: 'utf8',
            valueEncoding: 'buffer',
          })),
        );
        await db.close();
      }
      wiring = await wire(await openDataDirDb(dataDir));
      ctx.db = wiring.db;
      ctx.deps = wiring.deps;
      ctx.app = createApiApp(ctx.deps, { enrollRateLimit: false, maxModelBytes: FUZZ_MAX_MODEL_BYTES });
      ctx.fixtureDigest = digestOf(await storeSnapshot(ctx.db));
    },

    async close() {
      await unwire(wiring);
      removeTempDir(dir);
    },
  };
  await ctx.reset();
  return ctx;
}

// The coordinator store's consistency check, run at every start and by `loom coordinator check`:
// LevelDB's own recovery complaints, commits lost against the durable head, every job's versions
// and rounds, the registry's lineage and blobs, the audit chain against its durable head, and the
// enrollment records, and the lifecycle records (lifecycle-check.ts). It reads only; what to do about a finding is the caller's decision.
import type { DataKey } from '../../shared/crypto/index.ts';
import { isSealed, sealedKeyId } from '../../shared/crypto/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';
import { headProblems, type StoreProblem } from '../../shared/store/index.ts';
import type { AuditLog } from '../audit/index.ts';
import type { AgentDirectory, TokenStore } from '../directory/index.ts';
import type { JobStore } from '../jobs/index.ts';
import type { ModelRegistry, VersionRecord } from '../registry/index.ts';
import { binarySublevel, type CoordinatorDb, jsonSublevel, numericKey, SUBLEVEL } from '../store/index.ts';
import { checkLifecycleRecords } from './lifecycle-check.ts';

/** What the check found and what it looked at. */
export interface StoreReport {
  ok: boolean;
  /** Problems not accepted before: a coordinator refuses to start on any of them. */
  problems: StoreProblem[];
  /** Problems an operator accepted at an earlier start (`--ignore-store-damage`). */
  accepted: StoreProblem[];
  counts: {
    models: number;
    versions: number;
    jobs: number;
    rounds: number;
    agents: number;
    auditEntries: number;
    /** Evaluations, stages, aliases, policies, deployment targets, rollouts and retirements. */
    lifecycleRecords: number;
  };
}

export interface StoreCheckDeps {
  db: CoordinatorDb;
  registry: ModelRegistry;
  jobs: JobStore;
  agents: AgentDirectory;
  tokens: TokenStore;
  audit: AuditLog;
  dataKey: DataKey;
}

/** Options of `checkStore`. */
export interface StoreCheckOptions {
  /** Also decrypt every weight blob and check its SHA-256 (reads every blob). Default false. */
  full?: boolean;
}

const ACCEPTED_KEY = 'acceptedProblems';

function fingerprint(p: StoreProblem): string {
  return `${p.kind}|${p.message}`;
}

/** Runs every check; never throws for what it finds (a store it cannot read at all is a problem too). */
export async function checkStore(
  deps: StoreCheckDeps,
  options: StoreCheckOptions = {},
): Promise<StoreReport> {
  const { db, registry } = deps;
  const problems: StoreProblem[] = [...db.openProblems, ...headProblems(db.headAtOpen, db.commitSeq())];
  const counts = {
    models: 0,
    versions: 0,
    jobs: 0,
    rounds: 0,
    agents: 0,
    auditEntries: 0,
    lifecycleRecords: 0,
  };
  const add = (kind: string, message: string, job?: string): void => {
    problems.push({ kind, message, ...(job ? { job } : {}) });
  };
  const guard = async (what: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      add('unreadable', `${what}: ${isLoomError(err) ? err.message : String(err)}`);
    }
  };

  const versionsByModel = new Map<string, VersionRecord[]>();
  // Without the registry every lifecycle reference would look dangling: the unreadable registry is the finding.
  let registryRead = false;
  const blobs = binarySublevel(db.root, SUBLEVEL.weights);
  await guard('reading the registry', async () => {
    const models = await registry.listModels();
    const names = new Set(models.map((m) => m.name));
    const stray = new Set<string>();
    for (const v of await jsonSublevel<VersionRecord>(db.root, SUBLEVEL.versions).values().all()) {
      if (!names.has(v.model)) stray.add(v.model);
    }
    for (const name of stray)
      add('model-missing', `model ${name} has versions but its model record is missing`);
    for (const model of models) {
      counts.models++;
      const versions = await registry.listVersions(model.name);
      versionsByModel.set(model.name, versions);
      counts.versions += versions.length;
      const numbers = new Set(versions.map((v) => v.version));
      for (let n = 1; n <= model.latestVersion; n++) {
        if (!numbers.has(n))
          add(
            'version-missing',
            `model ${model.name}: version ${n} is missing (latest is ${model.latestVersion})`,
          );
      }
      for (const v of versions) {
        if (v.version > model.latestVersion) {
          add(
            'model-behind',
            `model ${model.name}: version ${v.version} exists but the model record says the latest is ${model.latestVersion}`,
          );
        }
        if (v.parentVersion !== null && (v.parentVersion >= v.version || !numbers.has(v.parentVersion))) {
          add(
            'lineage',
            `model ${model.name} v${v.version}: its parent version ${v.parentVersion} is missing`,
          );
        }
        const key = `${model.name}/${numericKey(v.version)}`;
        const sealed = await blobs.get(key);
        if (sealed === undefined) {
          add('weights-missing', `model ${model.name} v${v.version}: its weights are missing`);
        } else if (!isSealed(sealed)) {
          add('weights-unencrypted', `model ${model.name} v${v.version}: its weights are not encrypted`);
        } else if (sealedKeyId(sealed) !== deps.dataKey.id) {
          add(
            'weights-key',
            `model ${model.name} v${v.version}: its weights are encrypted with data key ${sealedKeyId(sealed)}, not ${deps.dataKey.id}`,
          );
        } else if (options.full) {
          try {
            await registry.getWeightsData(model.name, v.version);
          } catch (err) {
            add(
              'weights-damaged',
              `model ${model.name} v${v.version}: ${isLoomError(err) ? err.message : String(err)}`,
            );
          }
        }
      }
    }
    registryRead = true;
  });

  await guard('reading the lifecycle records', async () => {
    if (!registryRead) return;
    const { records } = await checkLifecycleRecords(db, versionsByModel, (kind, message, record) =>
      problems.push({ kind, message, record }),
    );
    counts.lifecycleRecords = records;
  });

  await guard('reading the jobs', async () => {
    const jobIds = new Set<string>();
    for (const job of await deps.jobs.list()) {
      counts.jobs++;
      jobIds.add(job.id);
      const versions = versionsByModel.get(job.config.model);
      if (!versions) {
        add('job-model', `job ${job.id}: its model ${job.config.model} is missing`, job.id);
        continue;
      }
      const byNumber = new Map(versions.map((v) => [v.version, v]));
      if (!byNumber.has(job.baseVersion))
        add('job-version', `job ${job.id}: its base version ${job.baseVersion} is missing`);
      if (job.latestVersion !== undefined && byNumber.get(job.latestVersion)?.jobId !== job.id) {
        add(
          'job-version',
          `job ${job.id}: its latest version ${job.latestVersion} is missing or belongs to another job`,
        );
      }
      const rounds = await deps.jobs.rounds(job.id);
      counts.rounds += rounds.length;
      const recorded = new Set(rounds.map((r) => r.round));
      for (const r of rounds) {
        if (r.version !== undefined && byNumber.get(r.version)?.jobId !== job.id) {
          add('job-version', `job ${job.id} round ${r.round}: its version ${r.version} is missing`, job.id);
        }
      }
      for (let n = 1; n < Math.max(0, ...rounds.map((r) => r.round)); n++) {
        if (!recorded.has(n)) add('job-round', `job ${job.id}: the record of round ${n} is missing`, job.id);
      }
      for (const v of versions) {
        if (v.jobId !== job.id || v.round === null) continue;
        if (!recorded.has(v.round)) {
          add(
            'job-round',
            `job ${job.id}: version ${v.version} was written by its round ${v.round}, whose record is missing (job shows ${job.state})`,
          );
        }
      }
      if (job.state === 'completed' && !recorded.has(job.config.rounds)) {
        add(
          'job-round',
          `job ${job.id}: completed, but its last round (${job.config.rounds}) has no record`,
          job.id,
        );
      }
      const last = rounds.find((r) => r.round === job.config.rounds);
      if ((job.state === 'running' || job.state === 'pending') && last?.state === 'completed') {
        // Its end was written in the same batch as the last round: a job that shows running
        // with that round on record lost the record of its own end, and would train again.
        add(
          'job-state',
          `job ${job.id}: shows ${job.state}, but its last round ${last.round} is on record: the record of its end was lost`,
          job.id,
        );
      }
    }
    for (const [model, versions] of versionsByModel) {
      for (const v of versions) {
        if (v.jobId !== null && !jobIds.has(v.jobId)) {
          add(
            'job-missing',
            `model ${model} v${v.version}: it was written by job ${v.jobId}, which is missing`,
          );
        }
      }
    }
  });

  await guard('reading the agents', async () => {
    const agents = await deps.agents.list();
    counts.agents = agents.length;
    const ids = new Set(agents.map((a) => a.id));
    const tokens = jsonSublevel<{ id: string; usedBy?: string }>(db.root, SUBLEVEL.enrollmentTokens);
    for (const t of await tokens.values().all()) {
      if (t.usedBy !== undefined && !ids.has(t.usedBy)) {
        add('agent-missing', `enrollment token ${t.id} was used by agent ${t.usedBy}, which is missing`);
      }
    }
  });

  await guard('verifying the audit log', async () => {
    const chain = await deps.audit.verify();
    counts.auditEntries = chain.entries;
    if (!chain.ok)
      add(
        'audit-chain',
        `the audit chain is broken at entry ${chain.brokenAt}: ${chain.reason ?? 'it does not verify'}`,
      );
  });

  const meta = jsonSublevel<string[]>(db.root, SUBLEVEL.meta);
  const acceptedKeys = new Set((await meta.get(ACCEPTED_KEY).catch(() => undefined)) ?? []);
  const unique = [...new Map(problems.map((p) => [fingerprint(p), p])).values()];
  const fresh = unique.filter((p) => !acceptedKeys.has(fingerprint(p)));
  return {
    ok: fresh.length === 0,
    problems: fresh,
    accepted: unique.filter((p) => acceptedKeys.has(fingerprint(p))),
    counts,
  };
}

/**
 * Records the report's problems as accepted by `actor` (audited), so later starts report them as
 * known rather than refusing; problems found later still refuse.
 */
export async function acceptStoreProblems(
  db: CoordinatorDb,
  report: StoreReport,
  actor: string,
): Promise<void> {
  if (report.problems.length === 0) return;
  const meta = jsonSublevel<string[]>(db.root, SUBLEVEL.meta);
  const known = (await meta.get(ACCEPTED_KEY)) ?? [];
  const all = [...new Set([...known, ...report.problems.map(fingerprint)])];
  await db.commit([{ type: 'put', sublevel: meta, key: ACCEPTED_KEY, value: all }], {
    audit: {
      actor,
      action: 'store.damage-accepted',
      details: { problems: report.problems.map((p) => p.message) },
    },
  });
}

/** The report as lines for people: one per problem, then the counts. */
export function formatStoreReport(report: StoreReport): string {
  const lines: string[] = [];
  if (report.problems.length > 0) {
    lines.push(`${report.problems.length} problem(s) found:`);
    for (const p of report.problems) lines.push(`  - [${p.kind}] ${p.message}`);
  } else {
    lines.push('no new problems found');
  }
  if (report.accepted.length > 0) {
    lines.push(`${report.accepted.length} problem(s) accepted earlier:`);
    for (const p of report.accepted) lines.push(`  - [${p.kind}] ${p.message}`);
  }
  const c = report.counts;
  lines.push(
    `checked ${c.models} model(s), ${c.versions} version(s), ${c.jobs} job(s) with ${c.rounds} round(s), ${c.agents} agent(s), ${c.auditEntries} audit entr${c.auditEntries === 1 ? 'y' : 'ies'}, ${c.lifecycleRecords} lifecycle record(s)`,
  );
  return lines.join('\n');
}

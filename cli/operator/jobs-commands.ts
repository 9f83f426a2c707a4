// `loom jobs start|list|show|cancel`: federated training jobs through the operator API.
import { readFile } from 'node:fs/promises';
import type { JobRequest, JobState, JobView } from '../../shared/api-client/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { parseLabelPair } from '../../shared/protocol/index.ts';
import { stringFlag } from '../args.ts';
import { apiCommand, collect, runOperator } from './command.ts';
import { numberFlag } from './connection.ts';
import { duration, fields, metricNames, num, out, outJson, table, time } from './format.ts';
import { watchJob } from './job-watch.ts';
import { JOB_OPTION_FLAGS, jobsCancelSpec, jobsListSpec, jobsShowSpec, jobsStartSpec } from './specs.ts';

const JOB_STATES: readonly JobState[] = ['pending', 'running', 'completed', 'failed', 'cancelled'];

async function readJobFile(path: string): Promise<Record<string, unknown>> {
  const text = await readFile(path, 'utf8').catch((err: unknown) => {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `cannot read the job file ${path}`, { cause: err });
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `the job file ${path} is not valid JSON`, {
      cause: err,
    });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `the job file ${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

export function jobsStart(argv: string[]): Promise<number> {
  return runOperator(jobsStartSpec, argv, async ({ flags, json, client }) => {
    const config = stringFlag(flags, 'config');
    const body: Record<string, unknown> = config ? await readJobFile(config) : {};
    const model = stringFlag(flags, 'model');
    if (model) body.model = model;
    if (typeof body.model !== 'string') {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--model is required (or "model" in --config)');
    }
    // Ranges are the server's to check (its 400 names the field); here only the number must parse.
    for (const [flag, spec] of Object.entries(JOB_OPTION_FLAGS)) {
      if (flags[flag] === undefined) continue;
      if (spec.kind === 'string') body[spec.field] = stringFlag(flags, flag);
      else {
        const n = numberFlag(flags, flag)!;
        if (spec.kind === 'int' && !Number.isSafeInteger(n)) {
          throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--${flag} must be a whole number`);
        }
        body[spec.field] = n;
      }
    }
    const excluded = flags['exclude-agent'];
    if (Array.isArray(excluded) && excluded.length > 0) body.excludeAgents = excluded;
    const labels = flags.label;
    if (Array.isArray(labels) && labels.length > 0) {
      body.labels = {
        ...(body.labels as Record<string, string> | undefined),
        ...Object.fromEntries(labels.map((l) => parseLabelPair(String(l), '--label'))),
      };
    }
    if (flags['allow-concurrent']) body.allowConcurrent = true;
    const api = await client();
    const job = await api.createJob(body as JobRequest);
    if (flags.watch) {
      if (!json) out(`Started job ${job.id} (${job.config.model}, ${job.config.rounds} rounds)`);
      return watchJob(api, job.id, { json });
    }
    if (json) outJson(job);
    else
      out(`Started job ${job.id}: ${job.config.model} from v${job.baseVersion}, ${job.config.rounds} rounds`);
    return 0;
  });
}

export function jobsList(argv: string[]): Promise<number> {
  return runOperator(jobsListSpec, argv, async ({ flags, json, client }) => {
    const state = stringFlag(flags, 'state');
    if (state !== undefined && !JOB_STATES.includes(state as JobState)) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--state must be one of ${JOB_STATES.join(', ')}`);
    }
    const model = stringFlag(flags, 'model');
    const api = await client();
    const jobs = await collect(
      flags,
      (after, limit) =>
        api.listJobs({
          limit,
          ...(after ? { after } : {}),
          ...(state ? { state: state as JobState } : {}),
          ...(model ? { model } : {}),
        }),
      (p) => p.jobs,
    );
    if (json) {
      outJson({ jobs });
      return 0;
    }
    out(
      table(
        [
          'ID',
          'MODEL',
          'STATE',
          { title: 'ROUNDS', align: 'right' },
          { title: 'VERSION', align: 'right' },
          'CREATED',
          { title: 'TIME', align: 'right' },
          'BY',
        ],
        jobs.map((j) => [
          j.id,
          j.config.model,
          j.state,
          `${j.currentRound}/${j.config.rounds}`,
          j.latestVersion === undefined ? '-' : `v${j.latestVersion}`,
          time(j.createdAt),
          duration(j.durationMs ?? (j.startedAt ? Date.now() - Date.parse(j.startedAt) : undefined)),
          j.createdBy,
        ]),
      ),
    );
    return 0;
  });
}

/** The rounds of a job as a table: one row per round, its metrics in columns. */
export function roundsTable(job: JobView): string {
  const ordered = metricNames(job.rounds.map((r) => r.trainMetrics));
  return table(
    [
      { title: 'ROUND', align: 'right' },
      'STATE',
      { title: 'SAMPLED', align: 'right' },
      { title: 'REPORTED', align: 'right' },
      { title: 'FAILED', align: 'right' },
      { title: 'EXAMPLES', align: 'right' },
      ...ordered.map((n) => ({ title: n.toUpperCase(), align: 'right' as const })),
      { title: 'VERSION', align: 'right' },
      { title: 'TIME', align: 'right' },
    ],
    job.rounds.map((r) => [
      `${r.round}/${job.config.rounds}`,
      r.state,
      num(r.sampled.length),
      num(r.participants.length),
      num(r.failures.length),
      num(r.numExamples),
      ...ordered.map((n) => num(r.trainMetrics?.[n])),
      r.version === undefined ? '-' : `v${r.version}`,
      duration(r.durationMs),
    ]),
  );
}

export function jobsShow(argv: string[]): Promise<number> {
  return runOperator(jobsShowSpec, argv, async ({ positionals, json, client }) => {
    const job = await (await client()).getJob(positionals[0]);
    if (json) {
      outJson(job);
      return 0;
    }
    const c = job.config;
    out(
      fields([
        ['job', job.id],
        ['model', `${c.model} from v${job.baseVersion}`],
        ['state', job.error ? `${job.state}: ${job.error.message} [${job.error.code}]` : job.state],
        ['rounds', `${job.currentRound}/${c.rounds}`],
        ['latest version', job.latestVersion === undefined ? '-' : `v${job.latestVersion}`],
        ['created', `${time(job.createdAt)} by ${job.createdBy}`],
        ['duration', duration(job.durationMs)],
        [
          'clients',
          `${c.clientsPerRound ?? (c.fraction !== undefined ? `${c.fraction * 100}% of online` : 'all online')}, quorum ${c.minClients}, round timeout ${num(c.roundTimeoutSec)} s`,
        ],
        [
          'local training',
          `${c.epochs} epoch(s), batch ${c.batchSize}, learning rate ${num(c.learningRate)}`,
        ],
        [
          'server',
          `learning rate ${num(c.serverLearningRate)}, engine ${c.engine ?? 'default'}, version every ${c.versionEvery}`,
        ],
        [
          'robustness',
          `weight cap ${num(c.weightCapRatio)}×, clip ${num(c.clipFactor)}×${c.maxUpdateNorm ? `, max norm ${num(c.maxUpdateNorm)}` : ''}`,
        ],
      ]),
    );
    if (job.rounds.length > 0) out(`\n${roundsTable(job)}`);
    const p = job.roundInProgress;
    if (p) {
      out(
        `\nround ${p.round} in progress: sampled ${p.sampled.length}, reported ${p.reported.length}, ` +
          `in flight ${p.inFlight.length}, failed ${p.failures.length}; deadline ${time(p.deadline)}`,
      );
    }
    for (const [agent, e] of Object.entries(job.excludedAgents))
      out(`excluded ${agent} (round ${e.round}): ${e.reason} [${e.code}]`);
    for (const w of job.warnings) out(`warning: ${w.agentId}: ${w.message}`);
    return 0;
  });
}

export const jobsCancel = apiCommand(
  jobsCancelSpec,
  (api, { positionals }) => api.cancelJob(positionals[0]),
  (job) => `Cancelled job ${job.id} (${job.state}, after ${job.currentRound}/${job.config.rounds} rounds)`,
);

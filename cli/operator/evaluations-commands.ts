// `loom evaluations start|show`: federated evaluations of a version on the sites' hold-out data, and
// the cross-site matrix (version × agent), through the operator API.
import type { EvaluationList, EvaluationRecord, LoomClient } from '../../shared/api-client/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { runOperator } from './command.ts';
import { countFlag, numberFlag } from './connection.ts';
import { duration, fields, num, out, outJson, table, time } from './format.ts';
import { agentNames } from './rollouts-commands.ts';
import { evaluationsShowSpec, evaluationsStartSpec } from './specs.ts';
import { agentsFlag, labelsFlag } from './targets.ts';

/** How often `--wait` looks at a running evaluation, ms. */
const WAIT_POLL_MS = 250;

const metric = (n: number | undefined): string => (n === undefined ? '-' : n.toFixed(4));

/** One evaluation for people: its fields, its sites and its failures. */
export function describeEvaluation(e: EvaluationRecord, names: Map<string, string>): string {
  const head = fields([
    ['evaluation', e.id],
    ['model', `${e.model} v${e.version}`],
    ['state', e.state + (e.error ? `: ${e.error.message} [${e.error.code}]` : '')],
    [
      'aggregate',
      e.aggregate
        ? `accuracy ${metric(e.aggregate.accuracy)}  loss ${metric(e.aggregate.loss)}  ${num(e.aggregate.numExamples)} hold-out examples at ${e.results.length} site(s)`
        : '-',
    ],
    ['hold-out share', `${num(e.holdoutFraction * 100)}% of each site's data`],
    [
      'asked',
      `${e.asked.length} agent(s), quorum ${e.request.minClients}, timeout ${num(e.request.timeoutSec)} s`,
    ],
    [
      'created',
      `${time(e.createdAt)} by ${e.createdBy}${e.jobId ? ` (job ${e.jobId} round ${e.round})` : ''}`,
    ],
    ['duration', duration(e.durationMs)],
  ]);
  const sites = table(
    [
      'AGENT',
      'NAME',
      { title: 'EXAMPLES', align: 'right' },
      { title: 'LOSS', align: 'right' },
      { title: 'ACCURACY', align: 'right' },
      { title: 'TIME', align: 'right' },
    ],
    e.results.map((r) => [
      r.agentId,
      names.get(r.agentId) ?? '-',
      num(r.numExamples),
      metric(r.loss),
      metric(r.accuracy),
      duration(r.roundTripMs),
    ]),
  );
  const failures =
    e.failures.length === 0
      ? ''
      : `\n\nfailed:\n${e.failures.map((f) => `  ${f.agentId}: ${f.reason} [${f.code}]`).join('\n')}`;
  return `${head}\n\n${sites}${failures}`;
}

/** The cross-site matrix: a row per version, its aggregate, then its accuracy at each site. */
export function describeMatrix(list: EvaluationList, names: Map<string, string>): string {
  const { matrix } = list;
  if (matrix.versions.length === 0) return `${matrix.model} has no completed evaluation yet`;
  const agentTitle = (id: string): string => names.get(id) ?? id;
  // Columns by the sites' names, which people know them by (ids break ties).
  const columns = [...matrix.agents].sort((a, b) =>
    agentTitle(a) === agentTitle(b) ? (a < b ? -1 : 1) : agentTitle(a) < agentTitle(b) ? -1 : 1,
  );
  const grid = table(
    [
      'VERSION',
      { title: 'ACCURACY', align: 'right' },
      { title: 'LOSS', align: 'right' },
      { title: 'EXAMPLES', align: 'right' },
      ...columns.map((id) => ({ title: agentTitle(id), align: 'right' as const })),
    ],
    matrix.versions.map((v) => [
      `v${v.version}`,
      metric(v.aggregate?.accuracy),
      metric(v.aggregate?.loss),
      num(v.aggregate?.numExamples),
      ...columns.map((id) => metric(v.agents[id]?.accuracy)),
    ]),
  );
  const recent = table(
    [
      'EVALUATION',
      { title: 'VERSION', align: 'right' },
      'STATE',
      { title: 'SITES', align: 'right' },
      { title: 'FAILED', align: 'right' },
      { title: 'ACCURACY', align: 'right' },
      { title: 'LOSS', align: 'right' },
      'CREATED',
    ],
    list.evaluations.map((e) => [
      e.id,
      `v${e.version}`,
      e.state,
      num(e.sites),
      num(e.failures),
      metric(e.aggregate?.accuracy),
      metric(e.aggregate?.loss),
      time(e.createdAt),
    ]),
  );
  return `accuracy on each site's hold-out data (newest completed evaluation of each version):\n${grid}\n\n${recent}`;
}

async function waitForEvaluation(api: LoomClient, e: EvaluationRecord): Promise<EvaluationRecord> {
  let current = e;
  while (current.state === 'running') {
    await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
    current = await api.getEvaluation(e.model, e.id);
  }
  return current;
}

export function evaluationsStart(argv: string[]): Promise<number> {
  return runOperator(evaluationsStartSpec, argv, async ({ flags, positionals, json, client }) => {
    const [name, version] = positionals;
    const labels = labelsFlag(flags);
    const agents = agentsFlag(flags);
    if (labels && agents)
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'give --label or --agents, not both');
    const minClients = countFlag(flags, 'min-clients', 1);
    const timeoutSec = numberFlag(flags, 'timeout');
    const api = await client();
    // The coordinator picks the agents carrying the labels (409 LOOM_ERR_NO_TARGETS when none does).
    const started = await api.startEvaluation(name, version, {
      ...(agents ? { agents } : {}),
      ...(labels ? { labels } : {}),
      ...(minClients === undefined ? {} : { minClients }),
      ...(timeoutSec === undefined ? {} : { timeoutSec }),
    });
    const on = agents
      ? `${agents.length} agent(s)`
      : labels
        ? `the agents labelled ${Object.entries(labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ')}`
        : 'every online agent';
    if (!flags.wait) {
      if (json) outJson(started);
      else
        out(
          `Started evaluation ${started.id} of ${name} v${started.version} on ${on}; ` +
            `see it with: loom evaluations show ${name} ${started.id}`,
        );
      return 0;
    }
    const ended = await waitForEvaluation(api, started);
    if (json) outJson(ended);
    else out(describeEvaluation(ended, await agentNames(api)));
    return ended.state === 'completed' ? 0 : 1;
  });
}

export function evaluationsShow(argv: string[]): Promise<number> {
  return runOperator(evaluationsShowSpec, argv, async ({ flags, positionals, json, client }) => {
    const [name, id] = positionals;
    const api = await client();
    if (id !== undefined) {
      const e = await api.getEvaluation(name, id);
      if (json) outJson(e);
      else out(describeEvaluation(e, await agentNames(api)));
      return 0;
    }
    const list = await api.listEvaluations(name, { limit: countFlag(flags, 'limit', 1) ?? 20 });
    if (json) outJson({ matrix: list.matrix, evaluations: list.evaluations });
    else out(describeMatrix(list, await agentNames(api)));
    return 0;
  });
}

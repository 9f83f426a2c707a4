// `loom jobs compare A B`: two jobs' hyper-parameters, the agents of each with the software and
// data fingerprint they claimed, and per-round metrics side by side.
import type { ExperimentAgent, JobView, RoundRecord } from '../../shared/api-client/index.ts';
import { runOperator } from './command.ts';
import { type Column, duration, metricNames, num, out, outJson, table } from './format.ts';
import { jobsCompareSpec } from './specs.ts';

/** One setting of the two jobs, and whether they differ. */
export interface SettingRow {
  name: string;
  a: unknown;
  b: unknown;
  differs: boolean;
}

/** One round of one job, briefly. */
export type RoundBrief = Pick<
  RoundRecord,
  'state' | 'trainMetrics' | 'numExamples' | 'durationMs' | 'version'
> & {
  participants: number;
  /** Hold-out accuracy and loss of the round's version, when the job evaluated it. */
  evaluation?: { accuracy?: number; loss?: number };
};

/** One round of the two jobs (absent where a job has no such round). */
export interface RoundPair {
  round: number;
  a?: RoundBrief;
  b?: RoundBrief;
}

/** One agent in either job: what it claimed in each, and whether the claims differ. */
export interface AgentPair {
  agentId: string;
  a?: ExperimentAgent;
  b?: ExperimentAgent;
  /** Present when the agent took part in both jobs. */
  differs?: { software: boolean; dataFingerprint: boolean };
}

function settings(a: JobView, b: JobView): SettingRow[] {
  const outline = (j: JobView): Record<string, unknown> => ({
    ...j.config,
    ...(j.experiment
      ? {
          engine: j.experiment.hyperParameters.engine,
          holdoutFraction: j.experiment.hyperParameters.holdoutFraction,
          agents: Object.keys(j.experiment.agents).length,
        }
      : {}),
    baseVersion: j.baseVersion,
    state: j.state,
    roundsDone: j.rounds.filter((r) => r.state === 'completed').length,
    latestVersion: j.latestVersion,
    durationMs: j.durationMs,
  });
  const oa = outline(a);
  const ob = outline(b);
  const names = [...new Set([...Object.keys(oa), ...Object.keys(ob)])];
  return names.map((name) => ({
    name,
    a: oa[name],
    b: ob[name],
    differs: JSON.stringify(oa[name]) !== JSON.stringify(ob[name]),
  }));
}

function roundPairs(a: JobView, b: JobView): RoundPair[] {
  const brief = (j: JobView, r: RoundRecord | undefined): RoundBrief | undefined => {
    if (!r) return undefined;
    const e = j.experiment?.rounds.find((x) => x.round === r.round)?.evaluation;
    return {
      state: r.state,
      trainMetrics: r.trainMetrics,
      numExamples: r.numExamples,
      durationMs: r.durationMs,
      participants: r.participants.length,
      ...(r.version !== undefined ? { version: r.version } : {}),
      ...(e && (e.accuracy !== undefined || e.loss !== undefined)
        ? { evaluation: { accuracy: e.accuracy, loss: e.loss } }
        : {}),
    };
  };
  const count = Math.max(a.rounds.length, b.rounds.length);
  return Array.from({ length: count }, (_, i) => {
    const ra = brief(
      a,
      a.rounds.find((r) => r.round === i + 1),
    );
    const rb = brief(
      b,
      b.rounds.find((r) => r.round === i + 1),
    );
    return { round: i + 1, ...(ra ? { a: ra } : {}), ...(rb ? { b: rb } : {}) };
  });
}

function agentPairs(a: JobView, b: JobView): AgentPair[] {
  const ea = a.experiment?.agents ?? {};
  const eb = b.experiment?.agents ?? {};
  const ids = [...new Set([...Object.keys(ea), ...Object.keys(eb)])].sort();
  return ids.map((agentId) => {
    const pa = ea[agentId];
    const pb = eb[agentId];
    return {
      agentId,
      ...(pa ? { a: pa } : {}),
      ...(pb ? { b: pb } : {}),
      ...(pa && pb
        ? {
            differs: {
              software: JSON.stringify(pa.software) !== JSON.stringify(pb.software),
              dataFingerprint: pa.dataFingerprint !== pb.dataFingerprint,
            },
          }
        : {}),
    };
  });
}

/** `0.1.0 node v20.11.1 tfjs-wasm`, as an agent claimed it. */
function software(agent: ExperimentAgent | undefined): string {
  const s = agent?.software;
  if (!s) return '-';
  return [s.loom, s.node && `node ${s.node}`, s.training].filter(Boolean).join(' ');
}

/** The first 12 hex digits of a fingerprint (enough to tell datasets apart), `*` when it changed mid-job. */
function fingerprint(agent: ExperimentAgent | undefined): string {
  if (!agent) return '-';
  const short = agent.dataFingerprint ? agent.dataFingerprint.slice(0, 12) : '?';
  return agent.history ? `${short}*` : short;
}

const show = (v: unknown, name: string): string => {
  if (v === undefined || v === null) return '-';
  if (name === 'durationMs' && typeof v === 'number') return duration(v);
  if (typeof v === 'number') return num(v);
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.join(', ');
  return String(v);
};

/** The comparison as text: the settings, then the rounds. */
export function formatComparison(a: JobView, b: JobView): string {
  const rows = settings(a, b);
  const head = table(
    ['', 'SETTING', `A ${a.id}`, `B ${b.id}`],
    rows.map((r) => [r.differs ? '*' : '', r.name, show(r.a, r.name), show(r.b, r.name)]),
  );
  const agents = agentPairs(a, b);
  const parts = [head];
  if (agents.length > 0) {
    parts.push(
      table(
        ['', 'AGENT', 'ROUNDS A', 'ROUNDS B', 'SOFTWARE A', 'SOFTWARE B', 'DATA A', 'DATA B'],
        agents.map((p) => [
          p.differs && (p.differs.software || p.differs.dataFingerprint) ? '*' : '',
          p.agentId,
          p.a ? num(p.a.rounds) : '-',
          p.b ? num(p.b.rounds) : '-',
          software(p.a),
          software(p.b),
          fingerprint(p.a),
          fingerprint(p.b),
        ]),
      ),
    );
  }
  const pairs = roundPairs(a, b);
  if (pairs.length === 0) return parts.join('\n\n');
  const evaluated = pairs.some((p) => p.a?.evaluation || p.b?.evaluation);
  const names = metricNames(pairs.flatMap((p) => [p.a?.trainMetrics, p.b?.trainMetrics]));
  const right = (title: string): Column => ({ title, align: 'right' });
  const columns: Column[] = [
    right('ROUND'),
    ...names.flatMap((n) => [right(`${n.toUpperCase()} A`), right(`${n.toUpperCase()} B`), right('B-A')]),
    ...(evaluated ? [right('EVAL ACC A'), right('EVAL ACC B')] : []),
    right('AGENTS A'),
    right('AGENTS B'),
    right('TIME A'),
    right('TIME B'),
  ];
  const body = pairs.map((p) => [
    String(p.round),
    ...names.flatMap((n) => {
      const va = p.a?.trainMetrics?.[n];
      const vb = p.b?.trainMetrics?.[n];
      const delta = va !== undefined && vb !== undefined ? vb - va : undefined;
      return [num(va), num(vb), delta === undefined ? '-' : `${delta > 0 ? '+' : ''}${num(delta)}`];
    }),
    ...(evaluated ? [num(p.a?.evaluation?.accuracy), num(p.b?.evaluation?.accuracy)] : []),
    p.a ? num(p.a.participants) : '-',
    p.b ? num(p.b.participants) : '-',
    p.a ? duration(p.a.durationMs) : '-',
    p.b ? duration(p.b.durationMs) : '-',
  ]);
  parts.push(table(columns, body));
  return parts.join('\n\n');
}

export function jobsCompare(argv: string[]): Promise<number> {
  return runOperator(jobsCompareSpec, argv, async ({ positionals, json, client }) => {
    const api = await client();
    const [a, b] = await Promise.all([api.getJob(positionals[0]), api.getJob(positionals[1])]);
    if (json) {
      outJson({
        jobs: [a.id, b.id],
        settings: settings(a, b),
        agents: agentPairs(a, b),
        rounds: roundPairs(a, b),
      });
    } else out(formatComparison(a, b));
    return 0;
  });
}

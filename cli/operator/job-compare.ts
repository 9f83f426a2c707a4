// `loom jobs compare A B`: two jobs' hyper-parameters and per-round metrics side by side.
import type { JobView, RoundRecord } from '../../shared/api-client/index.ts';
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

/** One round of the two jobs (absent where a job has no such round). */
export interface RoundPair {
  round: number;
  a?: Pick<RoundRecord, 'state' | 'trainMetrics' | 'numExamples' | 'durationMs' | 'version'> & {
    participants: number;
  };
  b?: Pick<RoundRecord, 'state' | 'trainMetrics' | 'numExamples' | 'durationMs' | 'version'> & {
    participants: number;
  };
}

function settings(a: JobView, b: JobView): SettingRow[] {
  const outline = (j: JobView): Record<string, unknown> => ({
    ...j.config,
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
  const brief = (r: RoundRecord | undefined): RoundPair['a'] =>
    r && {
      state: r.state,
      trainMetrics: r.trainMetrics,
      numExamples: r.numExamples,
      durationMs: r.durationMs,
      participants: r.participants.length,
      ...(r.version !== undefined ? { version: r.version } : {}),
    };
  const count = Math.max(a.rounds.length, b.rounds.length);
  return Array.from({ length: count }, (_, i) => {
    const ra = a.rounds.find((r) => r.round === i + 1);
    const rb = b.rounds.find((r) => r.round === i + 1);
    return { round: i + 1, ...(ra ? { a: brief(ra) } : {}), ...(rb ? { b: brief(rb) } : {}) };
  });
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
  const pairs = roundPairs(a, b);
  if (pairs.length === 0) return head;
  const names = metricNames(pairs.flatMap((p) => [p.a?.trainMetrics, p.b?.trainMetrics]));
  const right = (title: string): Column => ({ title, align: 'right' });
  const columns: Column[] = [
    right('ROUND'),
    ...names.flatMap((n) => [right(`${n.toUpperCase()} A`), right(`${n.toUpperCase()} B`), right('B-A')]),
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
    p.a ? num(p.a.participants) : '-',
    p.b ? num(p.b.participants) : '-',
    p.a ? duration(p.a.durationMs) : '-',
    p.b ? duration(p.b.durationMs) : '-',
  ]);
  return `${head}\n\n${table(columns, body)}`;
}

export function jobsCompare(argv: string[]): Promise<number> {
  return runOperator(jobsCompareSpec, argv, async ({ positionals, json, client }) => {
    const api = await client();
    const [a, b] = await Promise.all([api.getJob(positionals[0]), api.getJob(positionals[1])]);
    if (json) outJson({ jobs: [a.id, b.id], settings: settings(a, b), rounds: roundPairs(a, b) });
    else out(formatComparison(a, b));
    return 0;
  });
}

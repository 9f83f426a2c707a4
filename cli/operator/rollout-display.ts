// How a rollout reads for people: a line per wave (share, state, its agents by state, health against
// the limits, time left in the health window), the table of its agents, and its header.
import type { RolloutView } from '../../shared/api-client/index.ts';
import { HEALTH_LATENCY_BUCKETS_MS } from '../../shared/protocol/index.ts';
import { duration, fields, num, table, time } from './format.ts';

type Wave = RolloutView['waves'][number];
type Health = NonNullable<Wave['health']>;

/** The order agent states are named in: along the way, then the outcomes. */
const AGENT_STATES = [
  'pending',
  'transferring',
  'verifying',
  'active',
  'failed',
  'rolling-back',
  'rolled-back',
] as const;

/** `2 active, 1 transferring` for the agents of wave `index` (`no agents` for an empty wave). */
export function agentCounts(r: RolloutView, index: number): string {
  const agents = r.agents.filter((a) => a.wave === index);
  if (agents.length === 0) return 'no agents';
  return AGENT_STATES.flatMap((s) => {
    const n = agents.filter((a) => a.state === s).length;
    return n > 0 ? [`${n} ${s}`] : [];
  }).join(', ');
}

const percent = (x: number): string => `${Number((x * 100).toPrecision(3))}%`;

/** `p99 25 ms`, `p99 -` with no request, `p99 >10000 ms` above the last bucket. */
function p99(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 0) return `>${HEALTH_LATENCY_BUCKETS_MS[HEALTH_LATENCY_BUCKETS_MS.length - 1]} ms`;
  return `${num(ms)} ms`;
}

/** Health so far against the rollout's limits: `12/5 requests, errors 0% (max 1%), p99 25 ms (max 1000 ms)`. */
export function healthText(h: Health | undefined, policy: RolloutView['policy']): string {
  const requests = h?.requests ?? 0;
  const min = policy.minRequests > 0 ? ` (min ${num(policy.minRequests)})` : '';
  return (
    `${num(requests)} requests${min}, errors ${h && h.requests > 0 ? percent(h.errorRate) : '-'} ` +
    `(max ${percent(policy.maxErrorRate)}), p99 ${p99(h?.p99Ms ?? null)} (max ${num(policy.maxP99Ms)} ms)`
  );
}

/** Time left in the health window of a wave being watched, or what it waits for. */
export function windowText(r: RolloutView, w: Wave, now: number): string {
  if (w.state !== 'running') return '';
  if (r.state === 'paused') return 'paused';
  if (!w.observingSince) return 'waiting for its agents to run the version';
  const left = Date.parse(w.observingSince) + r.policy.healthWindowSec * 1000 - now;
  return left > 0 ? `${duration(left)} left in the health window` : 'health window over, judging';
}

/** One wave: `wave 1/2  50%  running  2 agents: 1 active, 1 transferring  health: ...`. */
export function waveLine(r: RolloutView, index: number, now?: number): string {
  const w = r.waves[index];
  const parts = [
    `wave ${index + 1}/${r.waves.length}`,
    `${w.percent}%`,
    w.state,
    `${w.agents.length} agent${w.agents.length === 1 ? '' : 's'}: ${agentCounts(r, index)}`,
  ];
  if (w.state !== 'pending') parts.push(`health: ${healthText(w.health, r.policy)}`);
  if (w.startedAt && w.endedAt) parts.push(duration(Date.parse(w.endedAt) - Date.parse(w.startedAt)));
  const left = now === undefined ? '' : windowText(r, w, now);
  if (left) parts.push(left);
  if (w.note) parts.push(`(${w.note})`);
  return parts.join('  ');
}

/** `rollout R  digits v3  running  wave 2/2` */
export function rolloutHead(r: RolloutView): string {
  const wave =
    r.state === 'completed' ? `${r.waves.length} waves` : `wave ${r.currentWave + 1}/${r.waves.length}`;
  return `rollout ${r.id}  ${r.model} v${r.version}  ${r.state}  ${wave}`;
}

export function targetText(target: RolloutView['target']): string {
  if ('all' in target) return 'all agents';
  if ('labels' in target)
    return `agents with ${Object.entries(target.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`;
  return `agents ${target.agents.join(', ')}`;
}

/** Everything `rollouts show` prints: its fields, its waves and its agents. */
export function describeRollout(r: RolloutView, names: Map<string, string>, now = Date.now()): string {
  const finished = r.finishedAt ? Date.parse(r.finishedAt) : now;
  const head = fields([
    ['rollout', r.id],
    [
      'model',
      `${r.model} v${r.version}${r.retiring === undefined ? '' : ` (replacing retired v${r.retiring})`}`,
    ],
    ['state', r.state],
    ['target', targetText(r.target)],
    ['waves', r.waves.map((w) => `${w.percent}%`).join(', ')],
    [
      'health limits',
      `window ${num(r.policy.healthWindowSec)} s, errors at most ${percent(r.policy.maxErrorRate)}, p99 at most ` +
        `${num(r.policy.maxP99Ms)} ms, at least ${num(r.policy.minRequests)} requests` +
        (r.policy.failQuorum === undefined
          ? ''
          : `; a wave fails when ${r.policy.failQuorum === 0 ? 'any agent fails' : `more than ${percent(r.policy.failQuorum)} of its agents fail`}`),
    ],
    ['created', `${time(r.createdAt)} by ${r.createdBy}`],
    ['duration', duration(finished - Date.parse(r.createdAt))],
    ...(r.reason ? ([['reason', r.reason]] as [string, string][]) : []),
  ]);
  const waves = table(
    [
      'WAVE',
      { title: 'SHARE', align: 'right' },
      'STATE',
      { title: 'AGENTS', align: 'right' },
      { title: 'REQUESTS', align: 'right' },
      { title: 'ERRORS', align: 'right' },
      { title: 'P99', align: 'right' },
      { title: 'TIME', align: 'right' },
      'NOTE',
    ],
    r.waves.map((w, i) => [
      `${i + 1}/${r.waves.length}`,
      `${w.percent}%`,
      w.state,
      num(w.agents.length),
      w.health ? num(w.health.requests) : '-',
      w.health && w.health.requests > 0 ? percent(w.health.errorRate) : '-',
      w.health ? p99(w.health.p99Ms) : '-',
      w.startedAt ? duration((w.endedAt ? Date.parse(w.endedAt) : now) - Date.parse(w.startedAt)) : '-',
      w.note ?? windowText(r, w, now),
    ]),
  );
  const agents = table(
    ['AGENT', 'NAME', { title: 'WAVE', align: 'right' }, 'STATE', 'PREVIOUS', 'UPDATED', 'REASON'],
    [...r.agents]
      .sort((a, b) => a.wave - b.wave || (a.id < b.id ? -1 : 1))
      .map((a) => [
        a.id,
        names.get(a.id) ?? '-',
        String(a.wave + 1),
        a.state,
        a.previousVersion === null ? 'none' : `v${a.previousVersion}`,
        time(a.updatedAt),
        a.reason ?? '',
      ]),
  );
  return `${head}\n\n${waves}\n\n${agents}`;
}

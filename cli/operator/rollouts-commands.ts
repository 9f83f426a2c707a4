// `loom rollouts start|list|show|pause|resume|rollback`: staged, health-gated rollouts of a version
// to the edge through the operator API.
import type { LoomClient, RolloutView } from '../../shared/api-client/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { stringFlag } from '../args.ts';
import { apiCommand, runOperator } from './command.ts';
import { countFlag, numberFlag } from './connection.ts';
import { num, out, outJson, table, time } from './format.ts';
import { describeRollout, targetText } from './rollout-display.ts';
import { followRollout, ROLLOUT_FOLLOW_DEFAULTS } from './rollout-follow.ts';
import {
  rolloutsListSpec,
  rolloutsPauseSpec,
  rolloutsResumeSpec,
  rolloutsRollbackSpec,
  rolloutsShowSpec,
  rolloutsStartSpec,
} from './specs.ts';
import { rolloutOptionsFromFlags, targetFromFlags } from './targets.ts';

const ROLLOUT_STATES: readonly RolloutView['state'][] = ['running', 'paused', 'completed', 'rolled-back'];

/** A whole version number from an argument. */
export function versionArg(raw: string, what = 'VERSION'): number {
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      `${what} must be a version number, not "${raw.slice(0, 40)}"`,
    );
  }
  return n;
}

/** Agent id → name, for tables that name the agents. */
export async function agentNames(api: LoomClient): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for await (const a of api.pages(
    (after) => api.listAgents({ limit: 1000, ...(after ? { after } : {}) }),
    (p) => p.agents,
  ))
    names.set(a.id, a.name);
  return names;
}

/** `Started rollout R of digits v3 to all agents: 4 agents in waves 50%, 100%` */
export function startedLine(r: RolloutView): string {
  return (
    `Started rollout ${r.id} of ${r.model} v${r.version} to ${targetText(r.target)}: ${num(r.agents.length)} ` +
    `agent(s) in waves ${r.waves.map((w) => `${w.percent}% (${w.agents.length})`).join(', ')}, ` +
    `health window ${num(r.policy.healthWindowSec)} s`
  );
}

export function rolloutsStart(argv: string[]): Promise<number> {
  return runOperator(rolloutsStartSpec, argv, async ({ flags, positionals, json, client }) => {
    const [model, rawVersion] = positionals;
    const request = {
      model,
      version: versionArg(rawVersion),
      target: targetFromFlags(flags),
      ...rolloutOptionsFromFlags(flags),
    };
    const api = await client();
    const rollout = await api.startRollout(request);
    if (flags.follow) {
      if (!json) out(startedLine(rollout));
      return followRollout(api, rollout.id, { json });
    }
    if (json) outJson(rollout);
    else out(startedLine(rollout));
    return 0;
  });
}

export function rolloutsList(argv: string[]): Promise<number> {
  return runOperator(rolloutsListSpec, argv, async ({ flags, json, client }) => {
    const state = stringFlag(flags, 'state');
    if (state !== undefined && !ROLLOUT_STATES.includes(state as RolloutView['state'])) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `--state must be one of ${ROLLOUT_STATES.join(', ')}`);
    }
    const model = stringFlag(flags, 'model');
    const limit = countFlag(flags, 'limit', 1);
    const { rollouts } = await (await client()).listRollouts({
      ...(model ? { model } : {}),
      ...(state ? { state: state as RolloutView['state'] } : {}),
      ...(limit === undefined ? {} : { limit }),
    });
    if (json) {
      outJson({ rollouts });
      return 0;
    }
    out(
      table(
        ['ID', 'MODEL', { title: 'VERSION', align: 'right' }, 'STATE', 'WAVE', 'AGENTS', 'TARGET', 'CREATED'],
        rollouts.map((r) => [
          r.id,
          r.model,
          `v${r.version}`,
          r.state,
          `${r.state === 'completed' ? r.waves.length : r.currentWave + 1}/${r.waves.length}`,
          `${r.agents.filter((a) => a.state === 'active').length}/${r.agents.length} active`,
          targetText(r.target),
          time(r.createdAt),
        ]),
      ),
    );
    return 0;
  });
}

export function rolloutsShow(argv: string[]): Promise<number> {
  return runOperator(rolloutsShowSpec, argv, async ({ flags, positionals, json, client }) => {
    const api = await client();
    const interval = numberFlag(flags, 'interval');
    if (interval !== undefined && !(interval >= 0.05 && interval <= 60)) {
      throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--interval must be from 0.05 to 60 seconds');
    }
    if (flags.follow) {
      return followRollout(api, positionals[0], {
        json,
        intervalMs: interval === undefined ? ROLLOUT_FOLLOW_DEFAULTS.intervalMs : interval * 1000,
      });
    }
    const rollout = await api.getRollout(positionals[0]);
    if (json) outJson(rollout);
    else out(describeRollout(rollout, await agentNames(api)));
    return 0;
  });
}

export const rolloutsPause = apiCommand(
  rolloutsPauseSpec,
  (api, { positionals }) => api.pauseRollout(positionals[0]),
  (r) => `Paused rollout ${r.id} of ${r.model} v${r.version} at wave ${r.currentWave + 1}/${r.waves.length}`,
);

export const rolloutsResume = apiCommand(
  rolloutsResumeSpec,
  (api, { positionals }) => api.resumeRollout(positionals[0]),
  (r) => `Resumed rollout ${r.id} of ${r.model} v${r.version} at wave ${r.currentWave + 1}/${r.waves.length}`,
);

export const rolloutsRollback = apiCommand(
  rolloutsRollbackSpec,
  (api, { positionals }) => api.rollbackRollout(positionals[0]),
  (r) =>
    `Rolling back rollout ${r.id}: ${num(r.agents.filter((a) => a.previousVersion !== r.version).length)} agent(s) ` +
    `return to the version they ran before ${r.model} v${r.version}`,
);

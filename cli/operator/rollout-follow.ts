// `loom rollouts show ID --follow`: a live view of a rollout, polled from GET /v1/rollouts/:id (the
// API has no event stream for rollouts). In a terminal a status block (every wave, health so far,
// time left in the health window) is redrawn in place under the lines of finished waves; piped,
// a line is printed only when a wave or an agent changes, until the rollout ends.
import type { LoomClient, RolloutView } from '../../shared/api-client/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';
import { duration, outJson, printable } from './format.ts';
import { plainScreen, type Screen, terminalScreen } from './live-screen.ts';
import { rolloutHead, targetText, waveLine } from './rollout-display.ts';

/** How `followRollout` looks, by default. */
export const ROLLOUT_FOLLOW_DEFAULTS = {
  /** Between two reads of the rollout, ms. */
  intervalMs: 500,
  /** Failed reads in a row (a dropped connection, a restarting coordinator) before giving up. */
  retries: 10,
} as const;

/** A rollout is over once it completed or was rolled back. */
export const isFinal = (r: RolloutView): boolean => r.state === 'completed' || r.state === 'rolled-back';

/** What makes a piped line worth printing: the wave's state, its agents, its note and its verdict so far. */
function waveKey(r: RolloutView, index: number): string {
  const w = r.waves[index];
  const agents = r.agents
    .filter((a) => a.wave === index)
    .map((a) => `${a.id}:${a.state}`)
    .sort()
    .join(',');
  const h = w.health;
  const verdict = h
    ? [
        h.requests >= r.policy.minRequests,
        h.requests > 0 && h.errorRate > r.policy.maxErrorRate,
        h.p99Ms !== null && (h.p99Ms < 0 || h.p99Ms > r.policy.maxP99Ms),
      ].join('/')
    : '';
  return [w.state, agents, w.note ?? '', w.observingSince ?? '', verdict].join('|');
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows rollout `id` until it completes (resolves 0) or is rolled back (resolves 1). `json`
 * prints the rollout as one JSON line each time it changes instead.
 */
export async function followRollout(
  api: LoomClient,
  id: string,
  options: { json?: boolean; intervalMs?: number; screen?: Screen } = {},
): Promise<number> {
  const intervalMs = options.intervalMs ?? ROLLOUT_FOLLOW_DEFAULTS.intervalMs;
  const tty = !options.json && process.stdout.isTTY === true;
  const screen = options.screen ?? (tty ? terminalScreen(process.stdout) : plainScreen());
  const waveKeys = new Map<number, string>();
  const agentStates = new Map<string, string>();
  let lastJson = '';
  let rollout: RolloutView | undefined;
  let failures = 0;
  try {
    for (;;) {
      let r: RolloutView;
      try {
        r = await api.getRollout(id);
        failures = 0;
      } catch (err) {
        // Only a network failure is worth waiting out; a rollout that is not there will not appear.
        if (
          !isLoomError(err) ||
          err.code !== 'LOOM_ERR_NETWORK' ||
          ++failures > ROLLOUT_FOLLOW_DEFAULTS.retries
        )
          throw err;
        await sleep(intervalMs);
        continue;
      }
      if (options.json) {
        const text = JSON.stringify(r);
        if (text !== lastJson) outJson(r);
        lastJson = text;
      } else {
        if (!rollout) {
          screen.line(
            printable(
              `following rollout ${r.id} (${r.model} v${r.version} to ${targetText(r.target)}, waves ` +
                `${r.waves.map((w) => `${w.percent}%`).join(', ')}, health window ${r.policy.healthWindowSec} s)`,
            ),
          );
        }
        report(r, screen, waveKeys, agentStates);
        screen.status([rolloutHead(r), ...r.waves.map((_, i) => `  ${waveLine(r, i, Date.now())}`)]);
      }
      rollout = r;
      if (isFinal(r)) break;
      await sleep(intervalMs);
    }
  } finally {
    screen.close();
  }
  if (!options.json) {
    const took = duration(
      Date.parse(rollout.finishedAt ?? rollout.updatedAt) - Date.parse(rollout.createdAt),
    );
    const active = rollout.agents.filter((a) => a.state === 'active').length;
    screen.line(
      printable(
        rollout.state === 'completed'
          ? `rollout ${rollout.id} completed in ${took}: ${rollout.model} v${rollout.version} active on ${active} of ${rollout.agents.length} agents`
          : `rollout ${rollout.id} rolled back after ${took}: ${rollout.reason ?? 'no reason given'}`,
      ),
    );
  }
  return rollout.state === 'completed' ? 0 : 1;
}

/** The lines that stay: a wave that changed (piped) or ended (terminal), and each agent that failed. */
function report(
  r: RolloutView,
  screen: Screen,
  waveKeys: Map<number, string>,
  agentStates: Map<string, string>,
): void {
  for (const a of r.agents) {
    const before = agentStates.get(a.id);
    agentStates.set(a.id, a.state);
    if (a.state !== before && (a.state === 'failed' || (a.state === 'rolled-back' && a.reason))) {
      screen.line(printable(`agent ${a.id} ${a.state}${a.reason ? `: ${a.reason}` : ''}`));
    }
  }
  r.waves.forEach((w, i) => {
    const key = waveKey(r, i);
    const before = waveKeys.get(i);
    waveKeys.set(i, key);
    if (key === before) return;
    // A wave that has not started says nothing new; in a terminal the status block shows the rest.
    if (w.state === 'pending' && before === undefined) return;
    const ended = w.state === 'passed' || w.state === 'failed';
    const wasEnded = before?.startsWith('passed|') || before?.startsWith('failed|');
    if (!screen.live || (ended && !wasEnded)) screen.line(printable(waveLine(r, i)));
  });
}

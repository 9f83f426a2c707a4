// Which enrolled agents a label selector picks: the one selection rollouts, jobs and evaluations
// share, so `{labels: {site: "berlin"}}` means the same agents everywhere.
import { matchesLabels } from '../../shared/protocol/index.ts';
import type { AgentRecord } from './agent-directory.ts';

/** The agents of `agents` that are not revoked and carry every label of `selector` with its value. */
export function selectByLabels(
  agents: readonly AgentRecord[],
  selector: Readonly<Record<string, string>>,
): AgentRecord[] {
  return agents.filter((a) => !a.revoked && matchesLabels(a.labels, selector));
}

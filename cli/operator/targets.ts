// The flags that choose agents (`--label KEY=VALUE ...`, `--agents ID,...`) and those of a rollout's
// waves and health limits, read once for `rollouts start`, `models promote` and `evaluations start`.
import type { RolloutPolicy, RolloutTarget } from '../../shared/api-client/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import { parseLabelPair } from '../../shared/protocol/index.ts';
import { type ParsedFlags, stringFlag } from '../args.ts';
import { countFlag, numberFlag } from './connection.ts';

/** `--label k=v` (repeatable) as one selector; undefined when none is given. */
export function labelsFlag(flags: ParsedFlags): Record<string, string> | undefined {
  const raw = flags.label;
  const pairs = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  if (pairs.length === 0) return undefined;
  return Object.fromEntries(pairs.map((p) => parseLabelPair(p, '--label')));
}

/** `--agents a,b` as a list of ids; undefined when absent. */
export function agentsFlag(flags: ParsedFlags): string[] | undefined {
  const raw = stringFlag(flags, 'agents');
  if (raw === undefined) return undefined;
  const ids = [...new Set(raw.split(',').map((s) => s.trim()))];
  if (ids.some((id) => id === '')) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--agents must be agent ids separated by commas');
  }
  return ids;
}

/** The agents `--label`/`--agents` choose, as a rollout target: every agent when neither is given. */
export function targetFromFlags(flags: ParsedFlags): RolloutTarget {
  const labels = labelsFlag(flags);
  const agents = agentsFlag(flags);
  if (labels && agents)
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'give --label or --agents, not both');
  if (labels) return { labels };
  if (agents) return { agents };
  return { all: true };
}

/** `--waves 10,50,100` as percentages (the server checks the rules); undefined when absent. */
export function wavesFlag(flags: ParsedFlags): number[] | undefined {
  const raw = stringFlag(flags, 'waves');
  if (raw === undefined) return undefined;
  const waves = raw.split(',').map((s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : Number.NaN));
  if (waves.some((w) => !Number.isSafeInteger(w))) {
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      '--waves must be whole percentages separated by commas, e.g. 10,50,100',
    );
  }
  return waves;
}

/** The rollout flags given (waves and health limits), in the API's field names; empty when none is. */
export function rolloutOptionsFromFlags(flags: ParsedFlags): Partial<RolloutPolicy> & { waves?: number[] } {
  const waves = wavesFlag(flags);
  const healthWindowSec = numberFlag(flags, 'health-window');
  const maxErrorRate = numberFlag(flags, 'max-error-rate');
  const maxP99Ms = numberFlag(flags, 'max-p99-ms');
  const minRequests = countFlag(flags, 'min-requests', 0);
  const failQuorum = numberFlag(flags, 'fail-quorum');
  return {
    ...(waves ? { waves } : {}),
    ...(healthWindowSec === undefined ? {} : { healthWindowSec }),
    ...(maxErrorRate === undefined ? {} : { maxErrorRate }),
    ...(maxP99Ms === undefined ? {} : { maxP99Ms }),
    ...(minRequests === undefined ? {} : { minRequests }),
    ...(failQuorum === undefined ? {} : { failQuorum }),
  };
}

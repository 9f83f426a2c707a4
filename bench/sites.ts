// The agent processes the round and rollout benchmarks run: N sites with disjoint MNIST parts,
// each enrolled with its own one-time token and started as `loom agent start`.
import { join } from 'node:path';
import { type AgentProcess, startAgentProcess } from '../cli/agent-process.ts';
import { writeSitePartitions } from '../cli/demo-data.ts';
import {
  initCoordinator,
  type RunningCoordinator,
  resolveCoordinatorConfig,
  startCoordinator,
} from '../coordinator/index.ts';
import { enrollAgent } from '../edge-agent/index.ts';
import { createLogger } from '../shared/log/index.ts';

/**
 * A silent coordinator on loopback with a new data dir under `dir`, on free ports, taking every
 * site's enrollment from this machine's one address, judging rollouts every 20 ms.
 */
export async function startBenchCoordinator(dir: string): Promise<RunningCoordinator> {
  const coordDir = join(dir, 'coordinator');
  await initCoordinator({ dataDir: coordDir, hosts: ['127.0.0.1'] });
  const config = await resolveCoordinatorConfig(coordDir, {
    host: '127.0.0.1',
    apiPort: 0,
    agentPort: 0,
    enrollRatePerMinute: 0,
    rolloutTickMs: 20,
  });
  return startCoordinator(config, createLogger('silent'));
}

/**
 * Starts `agents` sites of `examples` images each (undefined: an equal share of MNIST) under `dir` and waits until every one is online.
 * Each process goes into `procs` as soon as it starts, so the caller can stop them all whatever fails.
 */
export async function startSites(
  coordinator: RunningCoordinator,
  dir: string,
  agents: number,
  examples: number | undefined,
  procs: AgentProcess[],
): Promise<{ agentId: string; inferenceUrl: string }[]> {
  const parts = await writeSitePartitions(join(dir, 'data'), agents, 'iid', examples);
  for (const [i, part] of parts.entries()) {
    const t = await coordinator.enrollment.createToken('bench');
    const dataDir = join(dir, 'agents', `a${i}`);
    await enrollAgent({ coordinatorUrl: coordinator.apiUrl, token: t.token, dataDir, name: `a${i}` });
    procs.push(startAgentProcess(`a${i}`, dataDir, part.imagesPath, join(dir, `a${i}.log`)));
  }
  const ready = await Promise.all(procs.map((p) => p.ready));
  while (coordinator.gateway.onlineAgentIds().length < agents) await new Promise((r) => setTimeout(r, 50));
  return ready;
}

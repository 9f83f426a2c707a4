// `npm run bench -- rollout --agents 20 [--waves 100] [--load [--connections N]]`: N edge agents (separate
// processes) on loopback; a version of the 784-200-200-10 MLP (0.8 MB of weights) is rolled out
// to all of them through a rollout (signed deployment, verification, store, activation, ack per
// agent), and the time from the request to the last agent's activation is reported. With
// `--load`, autocannon keeps predicting at the first agent (`--connections`, default 10) from a
// second before the version switch to a second after it, and its requests, failures and p50/p99
// latency are reported too.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { type AgentProcess, stopProcess } from '../cli/agent-process.ts';
import { parseWaves } from '../coordinator/rollouts/index.ts';
import { startBenchCoordinator, startSites } from './sites.ts';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string', default: '20' },
      waves: { type: 'string', default: '100' },
      load: { type: 'boolean', default: false },
      connections: { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
    },
  });
  const agents = Number(values.agents);
  const waves = parseWaves(values.waves.split(',').map(Number));
  const dir = await mkdtemp(join(tmpdir(), 'loom-bench-rollout-'));
  const procs: AgentProcess[] = [];
  const coordinator = await startBenchCoordinator(dir);
  try {
    const ready = await startSites(coordinator, dir, agents, 64, procs);
    const arch = {
      kind: 'mlp' as const,
      inputShape: [784],
      layers: [200, 200, 10],
      activation: 'relu' as const,
    };
    const { initialWeights } = await import('../shared/models/index.ts');
    const first = await initialWeights(arch);
    await coordinator.registry.createModel({ name: '2nn', architecture: arch, ...first });
    const next = await initialWeights(arch);
    const addVersion = () =>
      coordinator.registry.addVersion({
        model: '2nn',
        parentVersion: 1,
        jobId: null,
        round: null,
        agents: [],
        exampleCounts: {},
        metrics: {},
        weights: next.weights,
      });
    const rollOut = async (version: number): Promise<number> => {
      const began = performance.now();
      const r = await coordinator.rollouts.create(
        {
          model: '2nn',
          version,
          target: { all: true },
          waves,
          policy: { healthWindowSec: 0, maxErrorRate: 1, maxP99Ms: 3_600_000, minRequests: 0 },
        },
        'bench',
      );
      for (;;) {
        const v = await coordinator.rollouts.get(r.id);
        if (v.state === 'completed' && v.agents.every((a) => a.state === 'active')) break;
        if (v.state === 'rolled-back') throw new Error(`rollout rolled back: ${v.reason}`);
        await new Promise((res) => setTimeout(res, 5));
      }
      return performance.now() - began;
    };
    // The first rollout brings every agent a version to serve; the second is the one measured
    // under load (an agent switches from one version to the next while it answers).
    const firstMs = await rollOut(1);
    // The load: autocannon (10 connections) predicting at the first agent from a second before
    // the switch until a second after it.
    const body = JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0.5) }],
    });
    let loadResult: Promise<autocannon.Result> | undefined;
    let loader: autocannon.Instance | undefined;
    if (values.load) {
      loadResult = new Promise((resolve, reject) => {
        loader = autocannon(
          {
            url: `${ready[0].inferenceUrl}/v2/models/2nn/infer`,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            connections: Number(values.connections),
            duration: 3600,
          },
          (err, r) => (err ? reject(err) : resolve(r)),
        );
      });
      await new Promise((res) => setTimeout(res, 1000));
    }
    const secondMs = await rollOut((await addVersion()).version);
    let load: autocannon.Result | undefined;
    if (loader && loadResult) {
      await new Promise((res) => setTimeout(res, 1000));
      loader.stop();
      load = await loadResult;
    }
    const result = {
      bench: 'rollout',
      agents,
      waves,
      weightBytes: first.weights.reduce((n, w) => n + w.data.byteLength, 0),
      firstRolloutMs: Math.round(firstMs),
      secondRolloutMs: Math.round(secondMs),
      ...(load
        ? {
            connections: Number(values.connections),
            requests: load.requests.total,
            failed: load.errors + load.non2xx + load.timeouts,
            p50Ms: load.latency.p50,
            p99Ms: load.latency.p99,
          }
        : {}),
    };
    if (values.json) console.log(JSON.stringify(result));
    else {
      console.log(
        `rollout of a ${(result.weightBytes / 1e6).toFixed(2)} MB version to ${agents} agents in waves [${waves}]: ` +
          `${result.firstRolloutMs} ms (first), ${result.secondRolloutMs} ms (second, a version switch)`,
      );
      if (load)
        console.log(
          `inference at one agent during the switch (autocannon, ${result.connections} connections): ` +
            `${result.requests} requests, ${result.failed} failed, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms`,
        );
    }
  } finally {
    await Promise.all(procs.map((p) => stopProcess(p.child)));
    await coordinator.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

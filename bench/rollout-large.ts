// `npm run bench -- rollout-large [--mb 200] [--json]`: a model far larger than the frame limit
// (default 200 MB of float32 weights: a 784 → N → 10 MLP with ~52M parameters) is rolled out to
// one edge agent (a separate process) over the real gateway in chunks. The transfer is cut
// halfway: half of the chunks reach the agent, the connection drops, the agent reconnects and says
// which chunks it holds; the rollout then sends only the missing ones before the agent verifies the
// signed manifest, stores and activates the version. Reported: the times, the chunks resumed, and
// the peak RSS of both processes (the coordinator's includes the bench's own copy of the first half).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type AgentProcess, stopProcess } from '../cli/agent-process.ts';
import { initCoordinator, resolveCoordinatorConfig, startCoordinator } from '../coordinator/index.ts';
import { createLogger } from '../shared/log/index.ts';
import {
  CLOSE_CODES,
  chunkPayload,
  createMessage,
  encodeMessage,
  encodeTensorBytes,
} from '../shared/protocol/index.ts';
import { startSites } from './sites.ts';

function countBits(bitmap: Uint8Array): number {
  let n = 0;
  for (const byte of bitmap) for (let b = byte; b; b &= b - 1) n++;
  return n;
}

/** Peak resident set of process `pid` (VmHWM), in MB. */
async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
  return Math.round(kb / 1024);
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { mb: { type: 'string', default: '200' }, json: { type: 'boolean', default: false } },
  });
  const hidden = Math.max(1, Math.round((Number(values.mb) * 1e6) / 4 / (784 + 10)));
  const dir = await mkdtemp(join(tmpdir(), 'loom-bench-rollout-large-'));
  const procs: AgentProcess[] = [];
  const coordDir = join(dir, 'coordinator');
  await initCoordinator({ dataDir: coordDir, hosts: ['127.0.0.1'] });
  const config = await resolveCoordinatorConfig(coordDir, {
    host: '127.0.0.1',
    apiPort: 0,
    agentPort: 0,
    enrollRatePerMinute: 0,
    rolloutTickMs: 20,
  });
  const coordinator = await startCoordinator(config, createLogger('silent'));
  try {
    const [site] = await startSites(coordinator, dir, 1, 64, procs);
    const arch = {
      kind: 'mlp' as const,
      inputShape: [784],
      layers: [hidden, 10],
      activation: 'relu' as const,
    };
    const { initialWeights } = await import('../shared/models/index.ts');
    const first = await initialWeights(arch);
    const weightBytes = first.weights.reduce((n, w) => n + w.data.byteLength, 0);
    await coordinator.registry.createModel({ name: 'large', architecture: arch, ...first });
    first.weights.length = 0;

    // The transfer is cut halfway: the first half of the chunks (cut as the gateway cuts them)
    // reaches the agent, then the connection drops and the agent reconnects.
    const began = performance.now();
    const first1 = coordinator.gateway.session(site.agentId)!;
    let half = 0;
    let chunks = 0;
    {
      const bytes = encodeTensorBytes(await coordinator.registry.getWeights('large', 1));
      const cut = chunkPayload(bytes, config.chunkBytes);
      chunks = cut.chunks.length;
      half = Math.floor(chunks / 2);
      for (const c of cut.chunks.slice(0, half)) first1.ws.send(encodeMessage(createMessage('chunk', c)));
    }
    while (first1.ws.bufferedAmount > 0) await new Promise((res) => setTimeout(res, 5));
    await new Promise((res) => setTimeout(res, 500));
    coordinator.gateway.disconnect(site.agentId, CLOSE_CODES.HEARTBEAT_TIMEOUT, 'connection cut');
    let held = 0;
    for (;;) {
      const s = coordinator.gateway.session(site.agentId);
      if (s && s !== first1) {
        held = [...s.info.partial.values()].reduce((n, p) => n + countBits(p.have), 0);
        break;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    const cutMs = performance.now() - began;

    let sends = 0;
    let resumedChunks = 0;
    coordinator.deployments.on('sent', (p) => {
      if (p.agentId !== site.agentId) return;
      sends++;
      resumedChunks = Math.max(resumedChunks, p.resumedChunks);
    });
    const rolloutBegan = performance.now();
    const r = await coordinator.rollouts.create(
      {
        model: 'large',
        version: 1,
        target: { all: true },
        waves: [100],
        policy: { healthWindowSec: 0, maxErrorRate: 1, maxP99Ms: 3_600_000, minRequests: 0 },
      },
      'bench',
    );
    for (;;) {
      const v = await coordinator.rollouts.get(r.id);
      if (v.state === 'completed' && v.agents.every((a) => a.state === 'active')) break;
      if (v.state === 'rolled-back') throw new Error(`rollout rolled back: ${v.reason}`);
      if (performance.now() - began > 900_000) throw new Error('the rollout did not finish in 15 minutes');
      await new Promise((res) => setTimeout(res, 20));
    }
    const rolloutMs = performance.now() - rolloutBegan;
    const agentPid = procs[0].child.pid!;
    const result = {
      bench: 'rollout-large',
      weightBytes,
      parameters: weightBytes / 4,
      chunkBytes: config.chunkBytes,
      maxFrameBytes: config.maxFrameBytes,
      chunks,
      sentBeforeCut: half,
      heldAfterCut: held,
      sends,
      resumedChunks,
      firstHalfAndReconnectMs: Math.round(cutMs),
      rolloutMs: Math.round(rolloutMs),
      coordinatorPeakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      agentPeakRssMb: await peakRssMb(agentPid),
    };
    if (values.json) console.log(JSON.stringify(result));
    else {
      console.log(
        `rollout of a ${(weightBytes / 1e6).toFixed(1)} MB version (${chunks} chunks of ${config.chunkBytes / 1048576} MiB, frame limit ${config.maxFrameBytes / 1048576} MiB) ` +
          `to one agent: ${half} chunks sent, connection cut, agent back holding ${held} (${result.firstHalfAndReconnectMs} ms); ` +
          `rollout ${result.rolloutMs} ms (${sends} send(s), ${resumedChunks} chunks not sent again); ` +
          `peak RSS coordinator ${result.coordinatorPeakRssMb} MB, agent ${result.agentPeakRssMb} MB`,
      );
    }
  } finally {
    await Promise.all(procs.map((p) => stopProcess(p.child)));
    await coordinator.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

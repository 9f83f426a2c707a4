// `npm run bench -- round --agents K`: K edge agents (separate processes) on loopback train the
// 784-200-200-10 MLP ("2NN") for a few FedAvg rounds; each round's wall time is split into agent
// training time (the slowest agent's own report) and coordinator overhead (everything else:
// encoding, transfer, validation, folding, the registry write).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type AgentProcess, stopProcess } from '../cli/agent-process.ts';
import { JOB_DEFAULTS, type JobRecord } from '../coordinator/jobs/index.ts';
import { startBenchCoordinator, startSites } from './sites.ts';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      // Default: every agent holds its whole share of the 60 000 MNIST training images.
      examples: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const agents = Number(values.agents);
  const rounds = Number(values.rounds);
  const examples = values.examples === undefined ? undefined : Number(values.examples);
  const dir = await mkdtemp(join(tmpdir(), 'loom-bench-round-'));
  const procs: AgentProcess[] = [];
  const coordinator = await startBenchCoordinator(dir);
  try {
    await startSites(coordinator, dir, agents, examples, procs);
    const arch = {
      kind: 'mlp' as const,
      inputShape: [784],
      layers: [200, 200, 10],
      activation: 'relu' as const,
    };
    const { initialWeights } = await import('../shared/models/index.ts');
    const init0 = await initialWeights(arch);
    await coordinator.registry.createModel({ name: '2nn', architecture: arch, ...init0 });
    const job = await coordinator.jobs.create(
      {
        model: '2nn',
        rounds,
        clientsPerRound: agents,
        minClients: agents,
        roundTimeoutSec: 600,
        epochs: 1,
        batchSize: 32,
        learningRate: 0.05,
        versionEvery: 1,
        serverLearningRate: 1,
        weightCapRatio: JOB_DEFAULTS.weightCapRatio,
        clipFactor: JOB_DEFAULTS.clipFactor,
      },
      'bench',
    );
    const finished: JobRecord = await coordinator.jobs.waitFor(job.id);
    if (finished.state !== 'completed') throw new Error(`job ${finished.state}: ${finished.error?.message}`);
    const done = await coordinator.jobs.get(job.id);
    const rows = done.rounds.map((r) => {
      const overhead = r.durationMs - r.trainMs;
      // The slowest agent's round trip, split: its training, and the rest of the trip (transfers
      // both ways, the agent's decoding and encoding); what is left of the round is the
      // coordinator's own work before the tasks go out and after the last result comes in.
      const slowest = r.participants.reduce(
        (a, p) => (p.roundTripMs > a.roundTripMs ? p : a),
        r.participants[0],
      );
      const inFlight = slowest ? slowest.roundTripMs - slowest.trainMs : 0;
      return {
        round: r.round,
        agents: r.participants.length,
        roundMs: r.durationMs,
        trainMs: r.trainMs,
        overheadMs: overhead,
        overheadPct: (100 * overhead) / r.durationMs,
        inFlightMs: inFlight,
        coordinatorMs: slowest ? r.durationMs - slowest.roundTripMs : overhead,
      };
    });
    for (const row of rows) {
      if (values.json) console.log(JSON.stringify({ bench: 'round', ...row }));
      else
        console.log(
          `round ${row.round}: ${row.agents} agents, ${row.roundMs} ms = ${row.trainMs} ms agent training + ${row.overheadMs} ms coordinator overhead (${row.overheadPct.toFixed(1)}%; slowest agent's trip ${row.inFlightMs} ms beyond its training, coordinator alone ${row.coordinatorMs} ms)`,
        );
    }
    const mean = rows.reduce((a, r) => a + r.overheadPct, 0) / rows.length;
    if (!values.json)
      console.log(`mean coordinator overhead: ${mean.toFixed(1)}% of the round (target ≤ 5% at 10 agents)`);
  } finally {
    await Promise.all(procs.map((p) => stopProcess(p.child)));
    await coordinator.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

// `loom demo`: a whole federation on this machine. A coordinator, K edge agents (separate
// processes, each with its own disjoint MNIST partition on local disk), mutual TLS, a FedAvg job
// on the 784-200-200-10 MLP, per-round test accuracy, and a prediction from an agent's local
// inference endpoint. Everything lives in a temp folder removed at the end (and on Ctrl-C).
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  initCoordinator,
  type RunningCoordinator,
  resolveCoordinatorConfig,
  startCoordinator,
} from '../coordinator/index.ts';
import type { JobView } from '../coordinator/jobs/index.ts';
import { assertMnistInstalled, enrollAgent, readMnist } from '../edge-agent/index.ts';
import { LoomError } from '../shared/errors/index.ts';
import { httpRequestRaw, requestJson } from '../shared/http/index.ts';
import { createLogger } from '../shared/log/index.ts';
import {
  buildModel,
  describeArchitecture,
  evaluateClassifier,
  type ModelArchitecture,
  modelWeightSpecs,
  writeWeights,
} from '../shared/models/index.ts';
import { splitWeightData } from '../shared/tensors/index.ts';
import { type AgentProcess, startAgentProcess, stopProcess } from './agent-process.ts';
import { intFlag, parseFlags, printHelp, stringFlag } from './args.ts';
import { type Partition, writeSitePartitions } from './demo-data.ts';
import { demoSpec } from './specs.ts';

const MODEL_NAME = 'mnist-mlp';
const ARCHITECTURE: ModelArchitecture = {
  kind: 'mlp',
  inputShape: [784],
  layers: [200, 200, 10],
  activation: 'relu',
};

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function demo(argv: string[]): Promise<number> {
  const { help, flags } = parseFlags(demoSpec, argv);
  if (help) return printHelp(demoSpec);
  const agents = intFlag(flags, 'agents', 4, 1, 32);
  const rounds = intFlag(flags, 'rounds', 5, 1, 1000);
  const partition = (stringFlag(flags, 'partition') ?? 'iid') as Partition;
  if (partition !== 'iid' && partition !== 'shards') {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--partition must be iid or shards');
  }
  const perAgent =
    flags['examples-per-agent'] === undefined
      ? undefined
      : intFlag(flags, 'examples-per-agent', 0, 1, 60_000);
  const learningRate = Number(stringFlag(flags, 'learning-rate') ?? '0.1');
  if (!(learningRate > 0 && learningRate < 10)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--learning-rate must be a number between 0 and 10');
  }
  // Before anything starts: the demo's data is a development dependency an install may lack.
  assertMnistInstalled();
  const json = flags.json === true;
  const say = (line: string): void => {
    if (!json) process.stdout.write(`${line}\n`);
  };
  const emit = (obj: Record<string, unknown>): void => {
    if (json) process.stdout.write(`${JSON.stringify(obj)}\n`);
  };

  const started = Date.now();
  const workspace = await mkdtemp(join(tmpdir(), 'loom-demo-'));
  const processes: AgentProcess[] = [];
  let coordinator: RunningCoordinator | undefined;
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await Promise.all(processes.map((p) => stopProcess(p.child)));
    await coordinator?.stop();
    if (!flags['keep-workspace']) await rm(workspace, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    say('\ninterrupted: stopping agents and coordinator…');
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    say(`Loom demo: ${agents} edge agents, ${rounds} rounds, ${partition} MNIST partitions`);
    say(`  workspace ${workspace}`);
    const coordDir = join(workspace, 'coordinator');
    const init = await initCoordinator({ dataDir: coordDir, hosts: ['localhost', '127.0.0.1'] });
    const config = await resolveCoordinatorConfig(coordDir, {
      host: '127.0.0.1',
      apiPort: 0,
      agentPort: 0,
      // Every site enrolls from this machine's one address.
      enrollRatePerMinute: 0,
    });
    const coordLog = createWriteStream(join(workspace, 'coordinator.log'));
    coordinator = await startCoordinator(config, createLogger({ write: (l) => coordLog.write(`${l}\n`) }));
    const api = coordinator.apiUrl;
    const caPem = (await requestJson<{ caCertificate: string }>(`${api}/v1/ca`, { insecure: true }))
      .caCertificate;
    const call = <T>(path: string, body?: unknown, method?: string): Promise<T> =>
      requestJson<T>(`${api}${path}`, {
        ca: caPem,
        headers: { authorization: `Bearer ${init.adminToken}` },
        ...(body === undefined ? {} : { body }),
        ...(method ? { method } : {}),
      });
    say(
      `• coordinator: API ${api}, agent gateway port ${coordinator.agentPort}, CA sha256:${init.caFingerprint.slice(0, 16)}…`,
    );

    // The sites share this machine's cores: more training threads than cores only take turns.
    const threadsPerAgent = Math.max(1, Math.floor(availableParallelism() / agents));
    const partitions = await writeSitePartitions(join(workspace, 'data'), agents, partition, perAgent);
    for (const [i, part] of partitions.entries()) {
      const name = `site-${i + 1}`;
      const { token } = await call<{ token: string }>('/v1/enrollment-tokens', { ttlSec: 600 });
      const dataDir = join(workspace, 'agents', name);
      await enrollAgent({ coordinatorUrl: api, token, dataDir, name });
      processes.push(
        startAgentProcess(name, dataDir, part.imagesPath, join(workspace, `${name}.log`), {
          threads: threadsPerAgent,
        }),
      );
    }
    say(
      `• ${agents} sites enrolled with one-time tokens and client certificates; ${partitions.map((p) => p.count).join(' / ')} local examples`,
    );
    const ready = await Promise.all(processes.map((p) => p.ready));
    for (let waited = 0; coordinator.gateway.onlineAgentIds().length < agents; waited += 100) {
      if (waited > 60_000) throw new LoomError('LOOM_ERR_NETWORK', 'agents did not connect within 60 s');
      await sleep(100);
    }
    say(`• ${agents} agents connected over mutual TLS`);

    const model = await call<{ paramCount: number }>('/v1/models', {
      name: MODEL_NAME,
      architecture: ARCHITECTURE,
    });
    const job = await call<{ id: string }>('/v1/jobs', {
      model: MODEL_NAME,
      rounds,
      clientsPerRound: agents,
      minClients: agents,
      roundTimeoutSec: 300,
      epochs: 1,
      batchSize: 32,
      learningRate,
      // Evaluated on the sites' hold-out data, then promoted through the gate (and so deployed).
      promote: 'if-better',
    });
    say(
      `• model ${MODEL_NAME}: ${describeArchitecture(ARCHITECTURE)}, ${model.paramCount.toLocaleString('en-US')} parameters`,
    );
    say(
      `• job ${job.id}: FedAvg, ${agents} agents per round, 1 local epoch, batch 32, learning rate ${learningRate}`,
    );
    say('');
    say('round  agents  train loss  test accuracy    time');

    const test = await readMnist('test');
    const testX = new Float32Array(test.images.length);
    for (let i = 0; i < testX.length; i++) testX[i] = test.images[i] / 255;
    const evalModel = await buildModel(ARCHITECTURE);
    const specs = modelWeightSpecs(evalModel);
    const evaluateVersion = async (version: number): Promise<number> => {
      const res = await httpRequestRaw(
        `${api}/v1/models/${MODEL_NAME}/versions/${version}/artifact/weights.bin`,
        {
          ca: caPem,
          headers: { authorization: `Bearer ${init.adminToken}` },
        },
      );
      if (res.status !== 200)
        throw new LoomError('LOOM_ERR_NETWORK', `artifact download answered HTTP ${res.status}`);
      const weights = splitWeightData(specs, res.body);
      writeWeights(evalModel, weights);
      return evaluateClassifier(evalModel, testX, test.labels, [784]).accuracy;
    };

    let shown = 0;
    let finalAccuracy = 0;
    let finalVersion = 0;
    for (;;) {
      const view = await call<JobView>(`/v1/jobs/${job.id}`);
      while (shown < view.rounds.length) {
        const r = view.rounds[shown++];
        const accuracy = r.version ? await evaluateVersion(r.version) : Number.NaN;
        finalAccuracy = accuracy;
        if (r.version) finalVersion = r.version;
        say(
          `${`${r.round}/${rounds}`.padStart(5)}  ${String(r.participants.length).padStart(6)}  ${(r.trainMetrics.loss ?? Number.NaN).toFixed(4).padStart(10)}  ${accuracy.toFixed(4).padStart(13)}  ${(r.durationMs / 1000).toFixed(1).padStart(6)} s`,
        );
        emit({
          round: r.round,
          participants: r.participants.length,
          trainLoss: r.trainMetrics.loss,
          accuracy,
          durationMs: r.durationMs,
          version: r.version,
        });
      }
      if (view.state === 'failed' || view.state === 'cancelled') {
        throw new LoomError(
          'LOOM_ERR_TASK_FAILED',
          `job ${view.state}: ${view.error?.message ?? 'no reason given'}`,
        );
      }
      if (view.state === 'completed' && shown >= view.rounds.length) break;
      await sleep(250);
    }
    evalModel.dispose();
    say('');
    say(
      `final model ${MODEL_NAME} v${finalVersion}: test accuracy ${finalAccuracy.toFixed(4)} on 10,000 MNIST test images`,
    );
    const finished = await call<JobView>(`/v1/jobs/${job.id}`);
    const evaluation = finished.evaluations?.at(-1);
    if (evaluation) {
      say(
        `federated evaluation on the sites' hold-out data: accuracy ${(evaluation.accuracy ?? Number.NaN).toFixed(4)}, ` +
          `loss ${(evaluation.loss ?? Number.NaN).toFixed(4)}, ${evaluation.numExamples ?? 0} examples at ${evaluation.sites} sites`,
      );
      emit({ evaluation });
    }
    const promotion = finished.promotion;
    if (!promotion?.promoted) {
      throw new LoomError(
        'LOOM_ERR_GATE',
        `v${finalVersion} was not promoted: ${promotion?.reasons?.join('; ') ?? promotion?.error?.message ?? 'no reason given'}`,
      );
    }
    say(`promoted v${finalVersion} to production through the gate; deploying it to the sites`);

    // Promotion deploys the version to every agent; wait until site-1 serves it.
    const site = ready[0];
    for (let waited = 0; ; waited += 100) {
      const res = await httpRequestRaw(`${site.inferenceUrl}/v2/models/${MODEL_NAME}`);
      if (res.status === 200) {
        const meta = JSON.parse(res.body.toString()) as { versions?: string[] };
        if (meta.versions?.includes(String(finalVersion))) break;
      }
      if (waited > 30_000)
        throw new LoomError('LOOM_ERR_NETWORK', `site-1 did not receive v${finalVersion} within 30 s`);
      await sleep(100);
    }
    const sample = 0;
    const image = Array.from(test.images.subarray(sample * 784, (sample + 1) * 784), (v) => v / 255);
    const inferUrl = `${site.inferenceUrl}/v2/models/${MODEL_NAME}/infer`;
    const res = await requestJson<{ model_version: string; outputs: { name: string; data: number[] }[] }>(
      inferUrl,
      {
        body: { inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: image }] },
      },
    );
    const predicted = res.outputs.find((o) => o.name === 'class')?.data[0] ?? -1;
    const label = test.labels[sample];
    say(
      `local inference on site-1 (POST ${inferUrl}): predicted ${predicted}, true label ${label}, model v${res.model_version}`,
    );
    say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    emit({ rounds, finalAccuracy, modelVersion: finalVersion, predicted, label });
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

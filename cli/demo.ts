// `loom demo`: a whole federation on this machine, through the model's lifecycle. A coordinator, K
// edge agents (separate processes, each with its own disjoint MNIST partition on local disk), mutual
// TLS, a FedAvg job on the 784-200-200-10 MLP with per-round test accuracy, a federated evaluation
// of the final version on the sites' hold-out data, promotion through the validation gate, a rollout
// in two health-gated waves while predictions flow, and a prediction from an agent's local inference
// endpoint. Everything lives in a temp folder removed at the end (and on Ctrl-C).
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
import { assertMnistInstalled, enrollAgent, readMnist } from '../edge-agent/index.ts';
import { LoomClient } from '../shared/api-client/index.ts';
import { LoomError } from '../shared/errors/index.ts';
import { requestJson } from '../shared/http/index.ts';
import { createLogger } from '../shared/log/index.ts';
import {
  buildModel,
  type CnnArchitecture,
  describeArchitecture,
  evaluateClassifier,
  type MlpArchitecture,
  modelWeightSpecs,
  writeWeights,
} from '../shared/models/index.ts';
import { splitWeightData } from '../shared/tensors/index.ts';
import { type AgentProcess, startAgentProcess, stopProcess } from './agent-process.ts';
import { intFlag, parseFlags, printHelp, stringFlag } from './args.ts';
import { type Partition, writeSitePartitions } from './demo-data.ts';
import {
  DEMO_LIFECYCLE,
  evaluateOnSites,
  followRolloutFigures,
  type GateVerdict,
  inferenceTraffic,
  promoteThroughGate,
  type RolloutFigures,
  type SiteRef,
} from './demo-lifecycle.ts';
import { plainScreen, type Screen } from './operator/index.ts';
import { demoSpec } from './specs.ts';

/** The models the demo trains (`--model`): the 784-200-200-10 MLP, or the FedAvg paper's CNN. */
const ARCHITECTURES: Record<'mlp' | 'cnn', MlpArchitecture | CnnArchitecture> = {
  mlp: { kind: 'mlp', inputShape: [784], layers: [200, 200, 10], activation: 'relu' },
  cnn: { kind: 'cnn', inputShape: [28, 28, 1], classes: 10 },
};
/** Each site's examples for the CNN when --examples-per-agent is not given: it trains far slower per example. */
const CNN_EXAMPLES_PER_AGENT = 1000;
/** Test images each CNN round is scored on (its final version on all 10,000). */
const CNN_ROUND_TEST_IMAGES = 1000;

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
  const modelKind = stringFlag(flags, 'model') ?? 'mlp';
  if (modelKind !== 'mlp' && modelKind !== 'cnn') {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', '--model must be mlp or cnn');
  }
  const architecture = ARCHITECTURES[modelKind];
  const modelName = `mnist-${modelKind}`;
  const perAgent =
    flags['examples-per-agent'] === undefined
      ? modelKind === 'cnn'
        ? CNN_EXAMPLES_PER_AGENT
        : undefined
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
    const api = new LoomClient(
      { url: coordinator.apiUrl, token: init.adminToken, caFingerprint: init.caFingerprint },
      {},
    );
    say(
      `• coordinator: API ${coordinator.apiUrl}, agent gateway port ${coordinator.agentPort}, CA sha256:${init.caFingerprint.slice(0, 16)}…`,
    );

    // The sites share this machine's cores: more training threads than cores only take turns.
    const threadsPerAgent = Math.max(1, Math.floor(availableParallelism() / agents));
    const partitions = await writeSitePartitions(join(workspace, 'data'), agents, partition, perAgent);
    for (const [i, part] of partitions.entries()) {
      const name = `site-${i + 1}`;
      const { token } = await api.createEnrollmentToken({ ttlSec: 600 });
      const dataDir = join(workspace, 'agents', name);
      await enrollAgent({ coordinatorUrl: coordinator.apiUrl, token, dataDir, name, labels: { site: name } });
      // Health every second, so the rollout's short health windows see the traffic.
      processes.push(
        startAgentProcess(name, dataDir, part.imagesPath, join(workspace, `${name}.log`), {
          threads: threadsPerAgent,
          extraArgs: ['--health-interval', '1'],
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
    const sites: SiteRef[] = ready.map((r, i) => ({
      name: `site-${i + 1}`,
      agentId: r.agentId,
      inferenceUrl: r.inferenceUrl,
    }));
    say(`• ${agents} agents connected over mutual TLS`);

    const model = await api.createModel({ name: modelName, architecture: architecture });
    // The job trains only: its final version is a candidate, taken to the sites by the lifecycle below.
    const job = await api.createJob({
      model: modelName,
      rounds,
      clientsPerRound: agents,
      minClients: agents,
      roundTimeoutSec: 300,
      epochs: 1,
      batchSize: 32,
      learningRate,
    });
    say(
      `• model ${modelName}: ${describeArchitecture(architecture)}, ${model.paramCount.toLocaleString('en-US')} parameters`,
    );
    say(
      `• job ${job.id}: FedAvg, ${agents} agents per round, 1 local epoch, batch 32, learning rate ${learningRate}`,
    );
    say('');
    say('1. train');
    const test = await readMnist('test');
    const testX = new Float32Array(test.images.length);
    for (let i = 0; i < testX.length; i++) testX[i] = test.images[i] / 255;
    // This process shares the cores with the sites while they train the next round: the CNN's
    // rounds are scored on the first 1,000 test images (about 2.5 s on tfjs's wasm backend rather
    // than 25), its final version on all of them.
    const roundTestCount = modelKind === 'cnn' ? CNN_ROUND_TEST_IMAGES : test.labels.length;
    if (roundTestCount < test.labels.length)
      say(
        `(each round's test accuracy on the first ${roundTestCount.toLocaleString('en-US')} test images, the final one on all)`,
      );
    say('round  agents  train loss  test accuracy    time');
    const evalModel = await buildModel(architecture);
    const specs = modelWeightSpecs(evalModel);
    const features = testX.length / test.labels.length;
    const evaluateVersion = async (version: number, count: number): Promise<number> => {
      writeWeights(evalModel, splitWeightData(specs, await api.getWeights(modelName, version)));
      const x = testX.subarray(0, count * features);
      return evaluateClassifier(evalModel, x, test.labels.subarray(0, count), architecture.inputShape)
        .accuracy;
    };

    let shown = 0;
    let finalAccuracy = 0;
    let finalVersion = 0;
    for (;;) {
      const view = await api.getJob(job.id);
      while (shown < view.rounds.length) {
        const r = view.rounds[shown++];
        const accuracy = r.version ? await evaluateVersion(r.version, roundTestCount) : Number.NaN;
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
          testImages: roundTestCount,
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
    if (roundTestCount < test.labels.length && finalVersion > 0)
      finalAccuracy = await evaluateVersion(finalVersion, test.labels.length);
    evalModel.dispose();
    say(
      `   final model ${modelName} v${finalVersion}: test accuracy ${finalAccuracy.toFixed(4)} on 10,000 MNIST test images`,
    );

    say('');
    say(`2. evaluate v${finalVersion} federatedly on each site's hold-out data (it never leaves the site)`);
    const evaluation = await evaluateOnSites(api, modelName, finalVersion, sites);
    for (const site of evaluation.sites) {
      say(
        `   ${site.name.padEnd(8)} accuracy ${site.accuracy.toFixed(4)}  loss ${site.loss.toFixed(4)}  ${site.numExamples} examples`,
      );
    }
    say(
      `   aggregate accuracy ${evaluation.accuracy.toFixed(4)}, loss ${evaluation.loss.toFixed(4)} on ${evaluation.numExamples} hold-out examples (${(evaluation.durationMs / 1000).toFixed(1)} s)`,
    );
    emit({ evaluation });

    say('');
    say(
      `3. promote v${finalVersion} to production through the gate (accuracy at least ${DEMO_LIFECYCLE.policy.min}, ` +
        `at most ${DEMO_LIFECYCLE.policy.maxRegression} below production)`,
    );
    const sample = 0;
    const image = Array.from(test.images.subarray(sample * 784, (sample + 1) * 784), (v) => v / 255);
    // Predictions flow to every site from before the promotion: the rollout's health windows see them.
    const traffic = inferenceTraffic(sites, modelName, image);
    let predictionsSent = 0;
    let rollout: Omit<RolloutFigures, 'predictionsSent'>;
    let gate: GateVerdict;
    try {
      const promotion = await promoteThroughGate(api, modelName, finalVersion);
      gate = promotion.gate;
      emit({ gate });
      if (!gate.passed) {
        for (const reason of gate.reasons) say(`   refused: ${reason}`);
        throw new LoomError('LOOM_ERR_GATE', `the gate refused v${finalVersion}: ${gate.reasons.join('; ')}`);
      }
      say(
        `   gate passed: accuracy ${evaluation.accuracy.toFixed(4)} ≥ ${DEMO_LIFECYCLE.policy.min}, no production version to regress from; v${finalVersion} is production`,
      );
      if (!promotion.rolloutId)
        throw new LoomError('LOOM_ERR_NO_TARGETS', 'the promotion rolled out to no agent');

      say('');
      say(
        `4. roll v${finalVersion} out in waves of ${DEMO_LIFECYCLE.waves.join('% and ')}%, each healthy for ${DEMO_LIFECYCLE.healthWindowSec} s ` +
          `(at least ${DEMO_LIFECYCLE.minRequests} predictions, errors ≤ ${DEMO_LIFECYCLE.maxErrorRate * 100}%, p99 ≤ ${DEMO_LIFECYCLE.maxP99Ms} ms) while predictions flow`,
      );
      const screen: Screen = { ...plainScreen(), line: (text) => say(`   ${text}`) };
      rollout = await followRolloutFigures(api, promotion.rolloutId, screen);
    } finally {
      predictionsSent = await traffic.stop();
    }
    const rolloutFigures: RolloutFigures = { ...rollout, predictionsSent };
    emit({ rollout: rolloutFigures });

    say('');
    const site = ready[0];
    const inferUrl = `${site.inferenceUrl}/v2/models/${modelName}/infer`;
    say('5. infer at the edge');
    const res = await requestJson<{ model_version: string; outputs: { name: string; data: number[] }[] }>(
      inferUrl,
      {
        body: { inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: image }] },
      },
    );
    const predicted = res.outputs.find((o) => o.name === 'class')?.data[0] ?? -1;
    const label = test.labels[sample];
    say(
      `   local inference on site-1 (POST ${inferUrl}): predicted ${predicted}, true label ${label}, model v${res.model_version}`,
    );
    say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    emit({
      rounds,
      finalAccuracy,
      modelVersion: finalVersion,
      predicted,
      label,
      servedVersion: Number(res.model_version),
      evaluation,
      gate,
      rollout: rolloutFigures,
      totalMs: Date.now() - started,
    });
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

// An enrolled but malicious agent: a real identity (enrolled with a one-time token), real mTLS and
// the real protocol, answering every training task with whatever its script makes up.

import { CoordinatorConnection } from '../../edge-agent/connection/index.ts';
import { loadIdentity } from '../../edge-agent/identity/index.ts';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import {
  type DatasetSummary,
  decodeTensorBytes,
  type EvaluateBody,
  type EvaluateResultBody,
  encodeTensorBytes,
  PROTOCOL_VERSIONS,
  type TrainBody,
} from '../../shared/protocol/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';
import type { TestCluster } from './cluster.ts';
import { datasetSummary } from './dataset.ts';

/** What the rogue answers to one task, given the global weights it was sent; undefined: nothing, ever. */
export type RogueAnswer = (
  task: TrainBody,
  global: WeightTensor[],
) => { numExamples: number; update: WeightTensor[]; metrics?: Record<string, number> } | undefined;

/** What the rogue answers to an evaluate task; undefined: a task-error saying it does not evaluate. */
export type RogueEvaluation = (
  task: EvaluateBody,
) => Omit<EvaluateResultBody, 'taskId' | 'evaluationId'> | 'silent' | undefined;

export interface RogueAgent {
  agentId: string;
  /** Its link, to send whatever frames it likes. */
  connection: CoordinatorConnection;
  /** Deployments it was sent (model name and version). */
  readonly deploys: { name: string; version: number }[];
  /** Tasks it answered. */
  readonly answered: number;
  /** Replaces what it answers from now on. */
  answer: RogueAnswer;
  /** Replaces what it answers to evaluate tasks from now on. */
  evaluation: RogueEvaluation;
  /** Evaluate tasks it was sent. */
  readonly evaluations: EvaluateBody[];
  stop(): Promise<void>;
}

/** Every weight moved by `delta`: the update that took over the global model before Loom bounded it. */
export function shiftEverything(global: WeightTensor[], delta: number): WeightTensor[] {
  return global.map((w) => ({ ...w, data: new Float32Array(w.data.length).fill(delta) }));
}

/**
 * Enrolls `name` and connects it as a rogue agent that declares `declared` examples in its hello
 * (with `scale` as its feature range) and answers tasks with `answer`.
 */
export async function startRogueAgent(
  cluster: TestCluster,
  name: string,
  opts: {
    declared: number;
    answer: RogueAnswer;
    featureMax?: number;
    /** Model versions it claims to hold in its hello. */
    claimModels?: { name: string; version: number }[];
    /** Its answer to evaluate tasks (default: a task-error). */
    evaluation?: RogueEvaluation;
  },
): Promise<RogueAgent> {
  const { dataDir, agentId } = await cluster.enroll(name);
  const id = await loadIdentity(dataDir);
  const dataset: DatasetSummary = datasetSummary(opts.declared, opts.featureMax ?? 1);
  let answered = 0;
  const deploys: { name: string; version: number }[] = [];
  const rogue: RogueAgent = {
    agentId,
    get connection() {
      return connection;
    },
    deploys,
    get answered() {
      return answered;
    },
    answer: opts.answer,
    evaluation: opts.evaluation ?? (() => undefined),
    evaluations: [],
    stop: () => connection.stop(),
  };
  const connection = new CoordinatorConnection({
    url: id.agentUrl,
    certPem: id.certPem,
    keyPem: id.keyPem,
    caPem: id.caPem,
    hello: () => ({
      protocolVersions: [...PROTOCOL_VERSIONS],
      agentVersion: '6.6.6',
      backend: 'made-up',
      models: opts.claimModels ?? [],
      dataset,
    }),
    log: createLogger('silent'),
  });
  connection.on('message', (msg) => {
    if (msg.type === 'deploy') deploys.push({ name: msg.body.model.name, version: msg.body.model.version });
    if (msg.type === 'evaluate') {
      rogue.evaluations.push(msg.body);
      const made = rogue.evaluation(msg.body);
      if (made === 'silent') return;
      if (!made) {
        connection.send('task-error', {
          taskId: msg.body.taskId,
          code: 'LOOM_ERR_INTERNAL',
          message: 'this agent does not evaluate',
        });
        return;
      }
      connection.send('evaluate-result', {
        taskId: msg.body.taskId,
        evaluationId: msg.body.evaluationId,
        ...made,
      });
      return;
    }
    if (msg.type !== 'train') return;
    const made = rogue.answer(msg.body, decodeTensorBytes(msg.body.weights));
    if (!made) return;
    answered++;
    connection.send('train-result', {
      taskId: msg.body.taskId,
      jobId: msg.body.jobId,
      round: msg.body.round,
      numExamples: made.numExamples,
      metrics: made.metrics ?? { loss: 0.0001, accuracy: 0.99 },
      update: encodeTensorBytes(made.update),
      trainMs: 1,
    });
  });
  const connected = new Promise<void>((resolve) => connection.once('connected', () => resolve()));
  connection.start();
  await connected;
  return rogue;
}

/** The agent ids of in-process honest agents. */
export function idsOf(agents: readonly EdgeAgent[]): string[] {
  return agents.map((a) => a.status().agentId);
}

// What the round engine needs from the agents, with no knowledge of sockets or frames.
import type { DatasetSummary, EvaluateBody, TrainBody } from '../../shared/protocol/index.ts';
import type { WeightTensor } from '../../shared/tensors/index.ts';

/** A training task is exactly the protocol's `train` body; the engine fills it, the gateway sends it. */
export type TrainTask = TrainBody;

export interface TrainOutcome {
  numExamples: number;
  metrics: Record<string, number>;
  update: WeightTensor[];
  /** Time the agent reports it spent training. */
  trainMs: number;
}

/** An evaluation task is exactly the protocol's `evaluate` body. */
export type EvaluateTask = EvaluateBody;

/** What an agent says about a version on its hold-out data: self-reported, checked by the engine. */
export interface EvaluateOutcome {
  numExamples: number;
  loss: number;
  accuracy: number;
  /** `confusion[t][p]`: hold-out examples of true class t predicted as p. */
  confusion: number[][];
  /** Time the agent reports it spent evaluating. */
  evalMs: number;
}

/**
 * Every kind of task the engine asks of agents, with the outcome it resolves to. A new kind is a
 * protocol message pair, an entry here, a `run…Task` below and the gateway routing its result.
 */
export interface AgentTasks {
  train: { task: TrainTask; outcome: TrainOutcome };
  evaluate: { task: EvaluateTask; outcome: EvaluateOutcome };
}

export type TaskKind = keyof AgentTasks;

/** The software an agent says it runs (its hello): a claim for the record, never a decision. */
export interface AgentSoftware {
  /** Loom version. */
  loom: string;
  /** Node.js version. Absent from agents that do not say. */
  node?: string;
  /** Training path (`tfjs-wasm`, ...). Absent from agents that do not say. */
  training?: string;
}

/** What an agent claims about itself when it connects: recorded in experiments, never trusted. */
export interface AgentClaims {
  software: AgentSoftware;
  /** SHA-256 (hex) of its dataset manifest; absent from agents that do not say. */
  dataFingerprint?: string;
}

export interface AgentPool {
  /** Ids of agents connected and ready for tasks. */
  onlineAgentIds(): string[];
  /** What a connected agent declared about its local data when it connected. */
  datasetOf(agentId: string): DatasetSummary | undefined;
  /** What a connected agent claimed about its software and data when it connected (pools that know). */
  claimsOf?(agentId: string): AgentClaims | undefined;
  /**
   * Sends a task and resolves with its result. Rejects with a LoomError when the agent
   * disconnects (LOOM_ERR_AGENT_DISCONNECTED), reports a failure (LOOM_ERR_TASK_FAILED, with
   * `details.permanent` true when the agent says asking again cannot help) or sends
   * an undecodable update (LOOM_ERR_TENSOR / LOOM_ERR_PROTOCOL).
   */
  runTrainTask(agentId: string, task: TrainTask): Promise<TrainOutcome>;
  /** Sends an evaluation task; rejects like `runTrainTask`. */
  runEvaluateTask(agentId: string, task: EvaluateTask): Promise<EvaluateOutcome>;
  /** Tells the agent to drop a task whose result is no longer wanted. */
  cancelTask(agentId: string, taskId: string): void;
  /** Calls `listener` whenever an agent comes online; returns the unsubscribe function. */
  onAgentOnline(listener: (agentId: string) => void): () => void;
}

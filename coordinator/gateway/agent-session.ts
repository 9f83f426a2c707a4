// One connected agent: sends frames, tracks its in-flight tasks, and fails them on disconnect.
import type { WebSocket } from 'ws';
import { LoomError } from '../../shared/errors/index.ts';
import {
  type ActivateBody,
  type ChunkBody,
  createMessage,
  type DatasetSummary,
  type DeployBody,
  decodeTensorBytes,
  encodeFrames,
  hasChunk,
  type Message,
  type MessageBodies,
  type MessageType,
  PayloadAssembler,
  type PayloadRef,
} from '../../shared/protocol/index.ts';
import type {
  AgentTasks,
  EvaluateOutcome,
  EvaluateTask,
  TaskKind,
  TrainOutcome,
  TrainTask,
} from '../rounds/index.ts';

/** A task in flight, by kind: what its result must name to be taken as its answer. */
type PendingTask = {
  [K in TaskKind]: {
    kind: K;
    /** Who the result must name: the job and round of a train task, the evaluation of an evaluate task. */
    owner: string;
    /**
     * Largest chunked payload the agent may send for it: about the weights sent with a train task
     * (its update is as large); none for an evaluation, whose result is a few numbers.
     */
    payloadBytes: number;
    resolve: (outcome: AgentTasks[K]['outcome']) => void;
    reject: (err: LoomError) => void;
  };
}[TaskKind];

export interface AgentSessionInfo {
  agentId: string;
  certSerial: string;
  backend: string;
  agentVersion: string;
  /** Node.js version and training path the agent claimed in its hello, if it did. */
  runtime?: string;
  training?: string;
  /** SHA-256 of its dataset manifest, as claimed in its hello. */
  dataFingerprint?: string;
  connectedAt: Date;
  remoteAddress: string;
  /** Model versions the agent says it holds (in its hello): a claim, never shown as fact. */
  claimedModels: Map<string, number>;
  /** What the agent declared about its local data in its hello. */
  dataset: DatasetSummary;
  /**
   * Payloads the agent holds part of (from a connection that dropped), by payload SHA-256:
   * a deployment of one sends only the chunks it lacks, once.
   */
  partial: Map<string, { count: number; have: Uint8Array }>;
  /** Versions its store holds (`name@version`), from its hello and the deployments it acknowledged since. */
  stored: Set<string>;
}

/** How a session frames what it sends. */
export interface SessionFraming {
  chunkBytes: number;
  /**
   * Payloads above this go as shared chunk frames: a round's weights are then encoded (and
   * hashed) once for every agent, instead of copied into each agent's own frame.
   */
  chunkAbove: number;
  /** Shared by every session of a gateway, so a payload sent to many agents is cut once. */
  chunkCache: WeakMap<Uint8Array, { ref: PayloadRef; frames: Buffer[] }>;
}

/** Slack over a task's weight size allowed for the update that answers it (msgpack headers). */
const UPDATE_SLACK_BYTES = 64 * 1024;

export class AgentSession {
  readonly info: AgentSessionInfo;
  private readonly pending = new Map<string, PendingTask>();
  /**
   * An agent may only send a chunked payload as large as an update for a task it holds: with no
   * task in flight it may send none, so it cannot make the coordinator hold memory at will.
   */
  private readonly payloads = new PayloadAssembler({
    maxPayloadBytes: () => Math.max(0, ...[...this.pending.values()].map((t) => t.payloadBytes)),
    maxPending: 2,
  });
  /** The version of each model last sent in a `deploy` or `activate` on this connection, awaiting its ack. */
  private readonly deploying = new Map<string, { version: number; activation: boolean }>();
  private closed = false;
  /** Set by each pong; a tick that finds it false ends the connection. */
  alive = true;

  constructor(
    readonly ws: WebSocket,
    info: AgentSessionInfo,
    private readonly framing: SessionFraming,
  ) {
    this.info = info;
  }

  get agentId(): string {
    return this.info.agentId;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends a message; a large payload goes first, as chunks shared with other sessions.
   * `onWritten` is called once the last frame has been handed to the socket.
   */
  send<T extends MessageType>(
    type: T,
    body: MessageBodies[T],
    replyTo?: string,
    onWritten?: () => void,
  ): void {
    if (this.closed)
      throw new LoomError('LOOM_ERR_AGENT_DISCONNECTED', `agent ${this.agentId} is not connected`);
    this.sendFrames(
      encodeFrames(createMessage(type, body, replyTo) as Message, {
        chunkBytes: this.framing.chunkBytes,
        chunkAbove: this.framing.chunkAbove,
        cache: this.framing.chunkCache,
      }),
      onWritten,
    );
  }

  private sendFrames(frames: Buffer[], onWritten?: () => void, skip?: (chunk: number) => boolean): void {
    frames.forEach((frame, i) => {
      const last = i === frames.length - 1;
      if (!last && skip?.(i)) return;
      if (last && onWritten) this.ws.send(frame, (err) => err || onWritten());
      else this.ws.send(frame);
    });
  }

  /** Takes a chunk of a payload the agent sends; LOOM_ERR_PROTOCOL ends the connection. */
  acceptChunk(chunk: ChunkBody): void {
    this.payloads.accept(chunk);
  }

  /** The assembled payload a message names (see DecodeOptions.payloads). */
  takePayload(ref: PayloadRef): Uint8Array {
    return this.payloads.take(ref);
  }

  runTrainTask(task: TrainTask): Promise<TrainOutcome> {
    return new Promise<TrainOutcome>((resolve, reject) => {
      if (this.closed) {
        reject(new LoomError('LOOM_ERR_AGENT_DISCONNECTED', `agent ${this.agentId} is not connected`));
        return;
      }
      this.pending.set(task.taskId, {
        kind: 'train',
        owner: `job ${task.jobId} round ${task.round}`,
        payloadBytes: task.weights.byteLength + UPDATE_SLACK_BYTES,
        resolve,
        reject,
      });
      this.send('train', { ...task });
    });
  }

  runEvaluateTask(task: EvaluateTask): Promise<EvaluateOutcome> {
    return new Promise<EvaluateOutcome>((resolve, reject) => {
      if (this.closed) {
        reject(new LoomError('LOOM_ERR_AGENT_DISCONNECTED', `agent ${this.agentId} is not connected`));
        return;
      }
      this.pending.set(task.taskId, {
        kind: 'evaluate',
        owner: `evaluation ${task.evaluationId}`,
        payloadBytes: 0,
        resolve,
        reject,
      });
      this.send('evaluate', { ...task });
    });
  }

  /**
   * The task a result answers, taken off the in-flight list, or undefined when there is none
   * (cancelled or late). A result of the wrong kind, or naming another job, round or evaluation,
   * fails the task.
   */
  private takeTask<K extends TaskKind>(
    kind: K,
    taskId: string,
    owner: string,
  ): Extract<PendingTask, { kind: K }> | undefined {
    const task = this.pending.get(taskId);
    if (!task) return undefined;
    this.pending.delete(taskId);
    if (task.kind !== kind) {
      task.reject(
        new LoomError('LOOM_ERR_PROTOCOL', `a ${kind} result answered a ${task.kind} task (${task.owner})`),
      );
      return undefined;
    }
    if (owner !== task.owner) {
      task.reject(
        new LoomError(
          kind === 'train' ? 'LOOM_ERR_UPDATE_REJECTED' : 'LOOM_ERR_PROTOCOL',
          `result names ${owner}, the task was ${task.owner}`,
        ),
      );
      return undefined;
    }
    return task as Extract<PendingTask, { kind: K }>;
  }

  /** Sends a deployment and remembers it, so only an ack of what was really sent counts. */
  sendDeploy(body: DeployBody, onWritten?: () => void): { resumedChunks: number } {
    if (this.closed)
      throw new LoomError('LOOM_ERR_AGENT_DISCONNECTED', `agent ${this.agentId} is not connected`);
    const frames = encodeFrames(createMessage('deploy', body) as Message, {
      chunkBytes: this.framing.chunkBytes,
      chunkAbove: this.framing.chunkAbove,
      cache: this.framing.chunkCache,
    });
    // The chunks the agent kept from a cut transfer of these very weights are not sent again,
    // provided they were cut the same way (the same count).
    const partial = this.info.partial.get(body.sha256);
    this.info.partial.delete(body.sha256);
    const resume = partial && partial.count === frames.length - 1 ? partial : undefined;
    let resumedChunks = 0;
    this.sendFrames(frames, onWritten, (i) => {
      const held = resume !== undefined && hasChunk(resume.have, i);
      if (held) resumedChunks++;
      return held;
    });
    this.deploying.set(body.model.name, { version: body.model.version, activation: false });
    return { resumedChunks };
  }

  /** Asks the agent to serve a version its store holds, and remembers it like a deployment. */
  sendActivate(body: ActivateBody, onWritten?: () => void): void {
    this.send('activate', body, undefined, onWritten);
    this.deploying.set(body.model.name, { version: body.model.version, activation: true });
  }

  /**
   * Whether an ack names the deployment this connection sent last for that model; a matching
   * ack is consumed. An agent cannot make the coordinator believe it runs a version it was never sent.
   */
  takeDeployAck(name: string, version: number): { activation: boolean } | undefined {
    const sent = this.deploying.get(name);
    if (sent?.version !== version) return undefined;
    this.deploying.delete(name);
    return { activation: sent.activation };
  }

  cancelTask(taskId: string): void {
    const task = this.pending.get(taskId);
    if (!task) return;
    this.pending.delete(taskId);
    if (!this.closed) this.send('cancel', { taskId });
  }

  /** Routes a train-result to its task. A result for an unknown task is ignored (cancelled or late). */
  handleTrainResult(body: MessageBodies['train-result']): void {
    const task = this.takeTask('train', body.taskId, `job ${body.jobId} round ${body.round}`);
    if (!task) return;
    try {
      const update = decodeTensorBytes(body.update);
      task.resolve({ numExamples: body.numExamples, metrics: body.metrics, update, trainMs: body.trainMs });
    } catch (err) {
      task.reject(err instanceof LoomError ? err : new LoomError('LOOM_ERR_TENSOR', String(err)));
    }
  }

  /** Routes an evaluate-result to its task; its figures are checked by the engine, which knows the model. */
  handleEvaluateResult(body: MessageBodies['evaluate-result']): void {
    const task = this.takeTask('evaluate', body.taskId, `evaluation ${body.evaluationId}`);
    if (!task) return;
    task.resolve({
      numExamples: body.numExamples,
      loss: body.loss,
      accuracy: body.accuracy,
      confusion: body.confusion,
      evalMs: body.evalMs,
    });
  }

  handleTaskError(body: MessageBodies['task-error']): void {
    const task = this.pending.get(body.taskId);
    if (!task) return;
    this.pending.delete(body.taskId);
    task.reject(
      new LoomError('LOOM_ERR_TASK_FAILED', `agent reported ${body.code}: ${body.message}`, {
        details: { agentCode: body.code, permanent: body.permanent === true },
      }),
    );
  }

  /** Marks the session closed and fails every in-flight task. Idempotent. */
  markClosed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.payloads.clear();
    for (const [taskId, task] of this.pending) {
      this.pending.delete(taskId);
      task.reject(
        new LoomError('LOOM_ERR_AGENT_DISCONNECTED', `agent ${this.agentId} disconnected: ${reason}`),
      );
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

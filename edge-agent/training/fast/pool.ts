// The agent's fast-path training threads: a few workers kept across rounds that train one model
// together over shared WebAssembly memory, while the agent's own thread keeps serving heartbeats,
// the coordinator channel and inference.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LoomError } from '../../../shared/errors/index.ts';
import { FusedNet } from './fused-net.ts';
import { kernelMemory } from './gemm-kernel.ts';
import { CONTROL_CELLS, CONTROL_STOP, type SharedTrainingJob, type WorkerReply } from './shared-job.ts';
import type { FastTrainingInput, FastTrainingOutput } from './train-fast.ts';

/** Threads when none are asked for: one per core. */
export const DEFAULT_TRAINING_THREADS = availableParallelism();

export interface PooledTrainingInput extends Omit<FastTrainingInput, 'shouldStop' | 'onBatch'> {
  /** Aborting stops the threads at the end of the step in progress (LOOM_ERR_JOB_CANCELLED). */
  signal?: AbortSignal;
}

export interface PooledTrainingOutput extends FastTrainingOutput {
  /** From the call to the end of the first batch (thread start included when they were not running). */
  firstBatchMs: number;
  threads: number;
}

/** Copies into memory every thread can read (kept per source array, so a dataset is copied once). */
const sharedCopies = new WeakMap<object, Float32Array | Int32Array>();
function sharedCopy<T extends Float32Array | Int32Array>(
  values: ArrayLike<number>,
  make: (sab: SharedArrayBuffer) => T,
): T {
  const key = values as object;
  const cached = sharedCopies.get(key) as T | undefined;
  if (cached && cached.length === values.length) return cached;
  const copy = make(new SharedArrayBuffer(values.length * 4));
  copy.set(values);
  sharedCopies.set(key, copy);
  return copy;
}

function shuffleInto(order: Int32Array): void {
  for (let i = 0; i < order.length; i++) order[i] = i;
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

/**
 * Trains on `threads` worker threads (default DEFAULT_TRAINING_THREADS), one run at a time.
 * Workers start on first use and stay until `close()`; they never keep the process alive.
 */
export class FastTrainingPool {
  readonly threads: number;
  private workers: Worker[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: { threads?: number } = {}) {
    const threads = opts.threads ?? DEFAULT_TRAINING_THREADS;
    if (!Number.isSafeInteger(threads) || threads < 1)
      throw new TypeError('threads must be a positive integer');
    this.threads = threads;
  }

  /** Trains as trainFast does, on the pool's threads. */
  train(input: PooledTrainingInput): Promise<PooledTrainingOutput> {
    const run = this.queue.then(() => this.run(input));
    this.queue = run.catch(() => {});
    return run;
  }

  /** Stops the threads; a later run starts new ones. */
  async close(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private start(): Worker[] {
    while (this.workers.length < this.threads) {
      const worker = new Worker(new URL('./worker-entry.js', import.meta.url));
      worker.unref();
      // A thread that dies between runs is dropped (the next run starts another); during a run
      // the run's own listener fails it. Without a listener its error would end the process.
      worker.on('error', () => {
        this.workers = this.workers.filter((w) => w !== worker);
      });
      worker.on('exit', () => {
        this.workers = this.workers.filter((w) => w !== worker);
      });
      this.workers.push(worker);
    }
    return this.workers;
  }

  private async run(input: PooledTrainingInput): Promise<PooledTrainingOutput> {
    const started = Date.now();
    if (input.signal?.aborted) throw new LoomError('LOOM_ERR_JOB_CANCELLED', 'training task cancelled');
    const { hyper, count, plan } = input;
    const batchSize = Math.max(1, Math.min(hyper.batchSize, count));
    const memory = kernelMemory(FusedNet.bytesFor(plan, batchSize), true);
    const net = new FusedNet(plan, batchSize, memory);
    net.setWeights(input.weights);
    const orders = new Int32Array(new SharedArrayBuffer(Math.max(1, hyper.epochs * count) * 4));
    for (let e = 0; e < hyper.epochs; e++) {
      const order = orders.subarray(e * count, (e + 1) * count);
      if (input.shuffle === false) {
        for (let i = 0; i < count; i++) order[i] = i;
      } else {
        shuffleInto(order);
      }
    }
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_CELLS * 4));
    const x = sharedCopy(input.x, (sab) => new Float32Array(sab));
    const labels = sharedCopy(input.labels, (sab) => new Int32Array(sab));
    const workers = this.start();
    const parts = workers.length;
    const figures = new Float64Array(new SharedArrayBuffer(parts * 2 * 8));
    const onAbort = (): void => {
      Atomics.store(control, CONTROL_STOP, 1);
    };
    input.signal?.addEventListener('abort', onAbort, { once: true });
    let firstBatchAt = Number.NaN;
    try {
      const replies = workers.map(
        (worker, part) =>
          new Promise<boolean>((resolve, reject) => {
            const onMessage = (reply: WorkerReply): void => {
              if (reply.type === 'first-batch') {
                firstBatchAt = reply.at;
                return;
              }
              cleanup();
              if (reply.type === 'done') resolve(reply.stopped);
              else reject(new LoomError('LOOM_ERR_INTERNAL', `a training thread failed: ${reply.message}`));
            };
            const onExit = (code: number): void => {
              cleanup();
              reject(
                new LoomError('LOOM_ERR_INTERNAL', `a training thread exited (code ${code}) during training`),
              );
            };
            const onError = (err: Error): void => {
              cleanup();
              reject(
                new LoomError('LOOM_ERR_INTERNAL', `a training thread failed: ${err.message}`, {
                  cause: err,
                }),
              );
            };
            const cleanup = (): void => {
              worker.off('message', onMessage);
              worker.off('error', onError);
              worker.off('exit', onExit);
            };
            worker.on('message', onMessage);
            worker.on('error', onError);
            worker.on('exit', onExit);
            const job: SharedTrainingJob = {
              memory,
              plan,
              batchSize,
              part,
              parts,
              x,
              labels,
              count,
              orders,
              epochs: hyper.epochs,
              learningRate: hyper.learningRate,
              control,
              figures,
            };
            worker.postMessage(job);
          }),
      );
      let stopped: boolean[];
      try {
        stopped = await Promise.all(replies);
      } catch (err) {
        // The other threads wait at a barrier the failed one will never reach.
        await this.close();
        throw err;
      }
      if (stopped.some(Boolean)) throw new LoomError('LOOM_ERR_JOB_CANCELLED', 'training task cancelled');
      let lossSum = 0;
      let correct = 0;
      for (let p = 0; p < parts; p++) {
        lossSum += figures[2 * p];
        correct += figures[2 * p + 1];
      }
      return {
        weights: net.getWeights(),
        metrics: { loss: lossSum / count, accuracy: correct / count },
        firstBatchMs: firstBatchAt - started,
        threads: parts,
      };
    } finally {
      input.signal?.removeEventListener('abort', onAbort);
    }
  }
}

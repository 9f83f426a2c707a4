// Dynamic batching of one loaded model version, as Triton's dynamic batcher does it: requests
// that arrive while the version is busy, or within a short delay of each other, are stacked
// into one prediction and split back, each request getting its own rows in order.

/** How requests are stacked; per model, with defaults for every model. */
export interface BatchingOptions {
  /**
   * Most examples (rows) in one stacked prediction; a request larger than this runs alone.
   * Default 64.
   */
  maxBatchSize?: number;
  /**
   * Longest a request waits for others to join its batch, in ms, once the version is free.
   * 0 (the default) stacks only what arrived in the same event-loop turn or while the version
   * was busy with the previous batch, so a lone request is never held back.
   */
  maxQueueDelayMs?: number;
}

export const BATCHING_DEFAULTS = { maxBatchSize: 64, maxQueueDelayMs: 0 } as const;

/** What a batcher has done since it was made. */
export interface BatchCounts {
  /** Requests answered (or failed) through it. */
  requests: number;
  /** Predictions run: fewer than `requests` when requests were stacked. */
  batches: number;
  /** Examples predicted. */
  rows: number;
  /** Most requests stacked into one prediction. */
  largestBatch: number;
}

/** The rows of one prediction: `rows * classes` probabilities and `rows` classes. */
export interface RowsResult {
  probabilities: Float32Array;
  classes: Int32Array;
}

interface Pending {
  inputs: Float32Array;
  rows: number;
  resolve: (r: RowsResult) => void;
  reject: (err: unknown) => void;
}

/** Checks batching options; a wrong value is a programming error (TypeError). */
export function resolveBatching(
  opts: BatchingOptions = {},
  base: Required<BatchingOptions> = BATCHING_DEFAULTS,
) {
  const maxBatchSize = opts.maxBatchSize ?? base.maxBatchSize;
  const maxQueueDelayMs = opts.maxQueueDelayMs ?? base.maxQueueDelayMs;
  if (!Number.isSafeInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new TypeError(`maxBatchSize must be a positive integer, got ${maxBatchSize}`);
  }
  if (!Number.isFinite(maxQueueDelayMs) || maxQueueDelayMs < 0 || maxQueueDelayMs > 60_000) {
    throw new TypeError(`maxQueueDelayMs must be a number of ms from 0 to 60000, got ${maxQueueDelayMs}`);
  }
  return { maxBatchSize, maxQueueDelayMs };
}

/**
 * Stacks the requests of one model version. `run` predicts `rows` stacked examples; batches of
 * one version run one after another, and a request never waits more than `maxQueueDelayMs` for
 * company (it may wait for the batch running before it).
 */
export class DynamicBatcher {
  private queue: Pending[] = [];
  private queuedRows = 0;
  private running = false;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private readonly stats: BatchCounts = { requests: 0, batches: 0, rows: 0, largestBatch: 0 };

  constructor(
    private readonly rowSize: number,
    private readonly classes: number,
    private readonly opts: Required<BatchingOptions>,
    private readonly run: (inputs: Float32Array, rows: number) => Promise<RowsResult>,
  ) {}

  /** Predicts `rows` examples (`inputs` checked by the caller), stacked with others when it can. */
  submit(inputs: Float32Array, rows: number): Promise<RowsResult> {
    return new Promise<RowsResult>((resolve, reject) => {
      this.queue.push({ inputs, rows, resolve, reject });
      this.queuedRows += rows;
      this.schedule();
    });
  }

  counts(): BatchCounts {
    return { ...this.stats };
  }

  private schedule(): void {
    if (this.running) return;
    if (this.queuedRows >= this.opts.maxBatchSize) {
      this.flush();
      return;
    }
    if (this.timer !== undefined) return;
    const fire = (): void => {
      this.timer = undefined;
      this.flush();
    };
    this.timer =
      this.opts.maxQueueDelayMs === 0 ? setImmediate(fire) : setTimeout(fire, this.opts.maxQueueDelayMs);
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = undefined;
    }
    if (this.running || this.queue.length === 0) return;
    // Take requests in arrival order up to the row limit (always at least one).
    let rows = this.queue[0].rows;
    let n = 1;
    while (n < this.queue.length && rows + this.queue[n].rows <= this.opts.maxBatchSize) {
      rows += this.queue[n].rows;
      n++;
    }
    const batch = this.queue.splice(0, n);
    this.queuedRows -= rows;
    this.running = true;
    this.stats.requests += n;
    this.stats.batches++;
    this.stats.rows += rows;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, n);
    this.runBatch(batch, rows).finally(() => {
      this.running = false;
      // What queued meanwhile has waited for the model already: run it at once.
      if (this.queue.length > 0) this.flush();
    });
  }

  private async runBatch(batch: Pending[], rows: number): Promise<void> {
    let stacked: Float32Array;
    if (batch.length === 1) stacked = batch[0].inputs;
    else {
      stacked = new Float32Array(rows * this.rowSize);
      let at = 0;
      for (const p of batch) {
        stacked.set(p.inputs, at);
        at += p.inputs.length;
      }
    }
    let result: RowsResult;
    try {
      result = await this.run(stacked, rows);
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    if (batch.length === 1) {
      batch[0].resolve(result);
      return;
    }
    let row = 0;
    for (const p of batch) {
      p.resolve({
        probabilities: result.probabilities.slice(row * this.classes, (row + p.rows) * this.classes),
        classes: result.classes.slice(row, row + p.rows),
      });
      row += p.rows;
    }
  }
}

// Holds loaded model versions, loads stored ones on demand, and swaps versions under live requests.
import * as tf from '@tensorflow/tfjs';
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import { buildModel, modelSignature, writeWeights } from '../../shared/models/index.ts';
import { sizeOf } from '../../shared/tensors/index.ts';
import type { LocalModelStore } from '../store/index.ts';
import {
  BATCHING_DEFAULTS,
  type BatchCounts,
  type BatchingOptions,
  DynamicBatcher,
  type RowsResult,
  resolveBatching,
} from './batcher.ts';
import { runInTurn } from './turns.ts';
import type { Prediction, ServedModel } from './types.ts';

/** Options of `ModelServer`. */
export interface ModelServerOptions {
  /**
   * Versions kept loaded per model name, the default one included; the least recently used of
   * the others is unloaded first (default 2: the served version and one more, such as the one
   * before it for a quick rollback).
   */
  maxLoadedVersions?: number;
  /** Where models that cannot be loaded at start are reported. Default: nowhere. */
  log?: Logger;
  /**
   * How long one synchronous prediction step should take, in ms. A batch runs in steps sized
   * from the time the model took per example so far, one step per event-loop turn, so a large
   * batch never holds the event loop (heartbeats, other requests) for long. Default 20.
   */
  stepMs?: number;
  /** Most examples in one prediction step, whatever the timing says. Default 256. */
  maxStepRows?: number;
  /**
   * Dynamic batching of every model: concurrent requests for one version stacked into one
   * prediction. Default `{maxBatchSize: 64, maxQueueDelayMs: 0}` (`BATCHING_DEFAULTS`).
   */
  batching?: BatchingOptions;
  /** Batching of particular models by name, over `batching`. Default: none. */
  modelBatching?: Record<string, BatchingOptions>;
}

export const MODEL_SERVER_DEFAULTS = {
  maxLoadedVersions: 2,
  stepMs: 20,
  maxStepRows: 256,
  batching: BATCHING_DEFAULTS,
} as const;

/** Examples in the first step of a model whose speed is not known yet. */
const FIRST_STEP_ROWS = 8;

interface Slot {
  served: ServedModel;
  batcher: DynamicBatcher;
  inFlight: number;
  retired: boolean;
  /** Milliseconds per example measured on this model's last step; undefined before the first. */
  msPerRow?: number;
}

interface Entry {
  /** The version served when a request names no version; none until a load makes one current. */
  current?: number;
  slots: Map<number, Slot>;
  /** Loaded versions, least recently used first. */
  order: number[];
}

/** Frees a retired model once nothing uses it any more. */
function release(slot: Slot): void {
  if (slot.retired && slot.inFlight === 0) slot.served.model.dispose();
}

function asLoomError(err: unknown): LoomError {
  return isLoomError(err)
    ? err
    : new LoomError('LOOM_ERR_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

/**
 * Loaded TensorFlow.js models by name and version. A new version is built, given its weights
 * and run once before it replaces the served one; a version a request names that is stored but
 * not loaded is loaded for it. Versions pushed out are disposed only when their in-flight
 * predictions finish.
 */
export class ModelServer {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<unknown>>();
  private readonly maxLoaded: number;
  private readonly stepMs: number;
  private readonly maxStepRows: number;
  private readonly log?: Logger;
  private readonly batching: Required<BatchingOptions>;
  private readonly modelBatching = new Map<string, Required<BatchingOptions>>();
  private disposed = false;

  constructor(
    private readonly store: LocalModelStore,
    opts: ModelServerOptions = {},
  ) {
    const max = opts.maxLoadedVersions ?? MODEL_SERVER_DEFAULTS.maxLoadedVersions;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new TypeError(`maxLoadedVersions must be a positive integer, got ${max}`);
    }
    this.maxLoaded = max;
    this.stepMs = opts.stepMs ?? MODEL_SERVER_DEFAULTS.stepMs;
    if (!(this.stepMs > 0)) throw new TypeError(`stepMs must be a positive number, got ${this.stepMs}`);
    this.maxStepRows = opts.maxStepRows ?? MODEL_SERVER_DEFAULTS.maxStepRows;
    if (!Number.isSafeInteger(this.maxStepRows) || this.maxStepRows < 1) {
      throw new TypeError(`maxStepRows must be a positive integer, got ${this.maxStepRows}`);
    }
    this.log = opts.log;
    this.batching = resolveBatching(opts.batching);
    for (const [name, b] of Object.entries(opts.modelBatching ?? {})) {
      this.modelBatching.set(name, resolveBatching(b, this.batching));
    }
  }

  /**
   * Loads `name`@`version` from the store (if not loaded yet) and makes it the default version
   * of `name`. Loads of one name run one after another.
   */
  async load(name: string, version: number): Promise<ServedModel> {
    const slot = await this.serialized(name, () =>
      this.loadNow(name, version, { current: true, pin: false }),
    );
    return slot.served;
  }

  /**
   * Loads the active version of every model in the store, so serving works offline at start.
   * A model that cannot be loaded (a damaged copy, say) is logged and skipped, so one bad model
   * does not stop the others. Resolves with the failures.
   */
  async loadActive(): Promise<LoomError[]> {
    const failures: LoomError[] = [];
    let active: Awaited<ReturnType<LocalModelStore['activeAll']>>;
    try {
      active = await this.store.activeAll();
    } catch (err) {
      const failure = asLoomError(err);
      this.log?.error('cannot list the stored models; starting with none loaded', {
        code: failure.code,
        error: failure.message,
      });
      return [failure];
    }
    for (const v of active) {
      try {
        await this.load(v.name, v.version);
      } catch (err) {
        const failure = asLoomError(err);
        failures.push(failure);
        this.log?.error('cannot load a stored model version; serving the others', {
          model: v.name,
          version: v.version,
          code: failure.code,
          error: failure.message,
        });
      }
    }
    return failures;
  }

  /** The loaded `version` of `name`, or its default version when `version` is omitted. */
  get(name: string, version?: number): ServedModel | undefined {
    const entry = this.entries.get(name);
    const v = version ?? entry?.current;
    return v === undefined ? undefined : entry?.slots.get(v)?.served;
  }

  /**
   * The model that answers for `name`@`version` (the default version when `version` is
   * omitted), loading a stored version that is not loaded. Throws as `predict` does.
   */
  async find(name: string, version?: number): Promise<ServedModel> {
    return (await this.acquire(name, version, false)).served;
  }

  /** Every loaded version, by name; within a name least recently used first, the default last. */
  list(): ServedModel[] {
    return [...this.entries.values()].flatMap((e) => {
      const others = e.order.filter((v) => v !== e.current);
      const versions = e.current === undefined ? others : [...others, e.current];
      return versions.map((v) => e.slots.get(v)!.served);
    });
  }

  /**
   * Runs a batch of `batch` examples (`inputs` row-major, `batch * sizeOf(inputShape)`
   * values) through `name`@`version` (default version when undefined), loading a stored
   * version on demand. Concurrent calls for the same version are stacked into one prediction
   * (dynamic batching, per the model's batching options) and each gets its own rows back. A
   * prediction runs in steps of about `stepMs` each (at most `maxStepRows` examples), one per
   * event-loop turn (`runInTurn`); the answer equals one prediction of the whole batch. Throws LOOM_ERR_MODEL_UNAVAILABLE when no version is named and nothing
   * is loaded, LOOM_ERR_NOT_FOUND for a name not loaded or a version not stored, and
   * LOOM_ERR_INFERENCE_INPUT for a wrong input length.
   */
  async predict(
    name: string,
    version: number | undefined,
    inputs: Float32Array,
    batch: number,
  ): Promise<Prediction> {
    // The slot comes back already counted as in use (in the same synchronous step that found
    // or loaded it), so neither a swap nor an eviction can dispose the model under this request.
    const slot = await this.acquire(name, version, true);
    try {
      const size = sizeOf(slot.served.inputShape);
      if (!Number.isSafeInteger(batch) || batch < 1) {
        throw new LoomError('LOOM_ERR_INFERENCE_INPUT', 'batch size must be a positive integer');
      }
      if (!(inputs instanceof Float32Array) || inputs.length !== batch * size) {
        throw new LoomError(
          'LOOM_ERR_INFERENCE_INPUT',
          `expected ${batch} x ${size} = ${batch * size} input values, got ${inputs?.length ?? 0}`,
        );
      }
      const rows = await slot.batcher.submit(inputs, batch);
      // A diverged version (NaN weights, say) answers nothing a caller could use; checked per
      // request, so one request's rows never fail another's.
      for (const value of rows.probabilities) {
        if (!Number.isFinite(value)) {
          throw new LoomError(
            'LOOM_ERR_MODEL_OUTPUT',
            `model "${name}" version ${slot.served.version} produced non-finite outputs`,
          );
        }
      }
      return { version: slot.served.version, probabilities: rows.probabilities, classes: rows.classes };
    } finally {
      slot.inFlight--;
      release(slot);
    }
  }

  /**
   * What dynamic batching has done for `name`@`version` (default version when omitted) since
   * it was loaded, or undefined when that version is not loaded.
   */
  batchCounts(name: string, version?: number): BatchCounts | undefined {
    const entry = this.entries.get(name);
    const v = version ?? entry?.current;
    return v === undefined ? undefined : entry?.slots.get(v)?.batcher.counts();
  }

  /**
   * Predicts `batch` stacked examples on `slot` in steps of about `stepMs` each (at most
   * `maxStepRows`), one per event-loop turn; rows are independent through the model, so steps
   * of any size give the one-batch answer.
   */
  private async runSteps(slot: Slot, inputs: Float32Array, batch: number): Promise<RowsResult> {
    const { model, inputShape, classes, name } = slot.served;
    const size = sizeOf(inputShape);
    const probabilities = new Float32Array(batch * classes);
    const predicted = new Int32Array(batch);
    for (let start = 0; start < batch; ) {
      const rows = Math.min(batch - start, this.stepRows(slot));
      const from = start;
      await runInTurn(async () => {
        const began = performance.now();
        const [probs, cls] = tf.tidy(() => {
          const x = tf.tensor(inputs.subarray(from * size, (from + rows) * size), [rows, ...inputShape]);
          const y = model.predict(x) as tf.Tensor;
          return [y, y.argMax(-1)];
        });
        try {
          const [p, c] = await Promise.all([probs.data(), cls.data()]);
          if (p.length !== rows * classes) {
            throw new LoomError('LOOM_ERR_INTERNAL', `model "${name}" returned ${p.length} values`);
          }
          probabilities.set(p, from * classes);
          predicted.set(c, from);
        } finally {
          tf.dispose([probs, cls]);
        }
        slot.msPerRow = (performance.now() - began) / rows;
      });
      start += rows;
    }
    return { probabilities, classes: predicted };
  }

  /** Examples in the next step on `slot`: about `stepMs` of work at the speed last measured. */
  private stepRows(slot: Slot): number {
    if (slot.msPerRow === undefined) return FIRST_STEP_ROWS;
    const rows = Math.floor(this.stepMs / Math.max(slot.msPerRow, 1e-6));
    return Math.min(this.maxStepRows, Math.max(1, rows));
  }

  /** Stops serving and frees every model (those in use once their requests finish). */
  dispose(): void {
    this.disposed = true;
    for (const entry of this.entries.values()) {
      for (const slot of entry.slots.values()) {
        slot.retired = true;
        release(slot);
      }
    }
    this.entries.clear();
  }

  /** Runs `fn` after every earlier load of `name`, whether that load failed or not. */
  private serialized<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.loading.get(name) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(fn);
    this.loading.set(name, run);
    const forget = (): void => {
      if (this.loading.get(name) === run) this.loading.delete(name);
    };
    run.then(forget, forget);
    return run;
  }

  /**
   * The slot for a request (counted as in use when `pin`): the default version when `version`
   * is undefined, else that version, loaded from the store if need be. Finding a loaded slot
   * happens before the first await, so a pinned one is counted at once.
   */
  private async acquire(name: string, version: number | undefined, pin: boolean): Promise<Slot> {
    const entry = this.entries.get(name);
    if (version === undefined) {
      if (this.entries.size === 0) {
        throw new LoomError('LOOM_ERR_MODEL_UNAVAILABLE', 'no model is loaded yet');
      }
      if (!entry || entry.current === undefined) {
        throw new LoomError('LOOM_ERR_NOT_FOUND', `model "${name}" is not loaded`);
      }
      return this.take(entry, entry.current, pin);
    }
    if (entry?.slots.has(version)) return this.take(entry, version, pin);
    return this.loadOnDemand(name, version, pin);
  }

  /** A loaded slot, marked as just used and counted as in use when `pin`. */
  private take(entry: Entry, version: number, pin: boolean): Slot {
    const slot = entry.slots.get(version)!;
    if (pin) slot.inFlight++;
    this.touch(entry, version);
    return slot;
  }

  /** Loads a version a request named; only a version the store does not hold is not found. */
  private async loadOnDemand(name: string, version: number, pin: boolean): Promise<Slot> {
    try {
      return await this.serialized(name, () => this.loadNow(name, version, { current: false, pin }));
    } catch (err) {
      // A name the store cannot even hold (too long, say) names no stored version either.
      if (isLoomError(err, 'LOOM_ERR_INVALID_ARGUMENT')) {
        throw new LoomError('LOOM_ERR_NOT_FOUND', `model "${name}" version ${version} is not stored`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  private async loadNow(
    name: string,
    version: number,
    how: { current: boolean; pin: boolean },
  ): Promise<Slot> {
    if (this.disposed) throw new LoomError('LOOM_ERR_MODEL_UNAVAILABLE', 'the model server is shut down');
    let slot = this.entries.get(name)?.slots.get(version);
    if (!slot) {
      const { meta, weights } = await this.store.get(name, version);
      const model = await buildModel(meta.architecture);
      let served: ServedModel;
      try {
        writeWeights(model, weights);
        const { inputShape, classes } = modelSignature(model);
        // One run now builds the kernels, so the first real request is not slow and a model that
        // cannot run never replaces one that can.
        tf.tidy(() => (model.predict(tf.zeros([1, ...inputShape])) as tf.Tensor).dataSync());
        served = { name, version, inputShape, classes, model };
      } catch (err) {
        model.dispose();
        throw err;
      }
      if (this.disposed) {
        model.dispose();
        throw new LoomError('LOOM_ERR_MODEL_UNAVAILABLE', 'the model server is shut down');
      }
      const batching = this.modelBatching.get(name) ?? this.batching;
      const made: Slot = {
        served,
        inFlight: 0,
        retired: false,
        // Set just below; the batcher runs its batches on this very slot.
        batcher: undefined as unknown as DynamicBatcher,
      };
      made.batcher = new DynamicBatcher(sizeOf(served.inputShape), served.classes, batching, (x, rows) =>
        this.runSteps(made, x, rows),
      );
      slot = made;
    }
    // From here to the return is one synchronous step: the swap is a single reference change,
    // and a pinned slot is counted before anything can evict it.
    let entry = this.entries.get(name);
    if (!entry) {
      entry = { slots: new Map(), order: [] };
      this.entries.set(name, entry);
    }
    entry.slots.set(version, slot);
    if (how.current) entry.current = version;
    if (how.pin) slot.inFlight++;
    this.touch(entry, version);
    this.evict(entry);
    return slot;
  }

  /** Marks `version` as the most recently used of its name. */
  private touch(entry: Entry, version: number): void {
    if (entry.order[entry.order.length - 1] === version) return;
    entry.order = [...entry.order.filter((v) => v !== version), version];
  }

  /** Unloads the least recently used versions beyond the limit; the default version stays. */
  private evict(entry: Entry): void {
    while (entry.slots.size > this.maxLoaded) {
      const victim = entry.order.find((v) => v !== entry.current);
      if (victim === undefined) return;
      const old = entry.slots.get(victim)!;
      entry.slots.delete(victim);
      entry.order = entry.order.filter((v) => v !== victim);
      old.retired = true;
      release(old);
    }
  }
}

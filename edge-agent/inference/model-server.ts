// Holds the loaded model versions and swaps in new ones without disturbing requests in flight.
import * as tf from '@tensorflow/tfjs';
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import { buildModel, modelSignature, writeWeights } from '../../shared/models/index.ts';
import type { LocalModelStore } from '../store/index.ts';
import type { Prediction, ServedModel } from './types.ts';

/** Versions kept loaded per name: the served one and the one before it, for quick rollback. */
const KEEP_VERSIONS = 2;

interface Slot {
  served: ServedModel;
  inFlight: number;
  retired: boolean;
}

interface Entry {
  /** The version served when a request names no version. */
  current: number;
  slots: Map<number, Slot>;
  /** Loaded versions, least recently made current first. */
  order: number[];
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Frees a retired model once nothing uses it any more. */
function release(slot: Slot): void {
  if (slot.retired && slot.inFlight === 0) slot.served.model.dispose();
}

/**
 * Loaded TensorFlow.js models by name and version. A new version is built, given its
 * weights and run once before it replaces the served one; versions pushed out are disposed
 * only when their in-flight predictions finish.
 */
export class ModelServer {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<unknown>>();
  private disposed = false;

  constructor(private readonly store: LocalModelStore) {}

  /**
   * Loads `name`@`version` from the store and makes it the default version of `name`. At most
   * the last 2 versions made current stay loaded. Loads of one name run one after another.
   */
  load(name: string, version: number): Promise<ServedModel> {
    const previous = this.loading.get(name) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.loadNow(name, version));
    this.loading.set(name, run);
    const forget = (): void => {
      if (this.loading.get(name) === run) this.loading.delete(name);
    };
    run.then(forget, forget);
    return run;
  }

  /**
   * Loads the active version of every model in the store, so serving works offline at start.
   * One model failing does not stop the others; the failures are thrown together afterwards.
   */
  async loadActive(): Promise<void> {
    const failures: LoomError[] = [];
    for (const v of await this.store.activeAll()) {
      try {
        await this.load(v.name, v.version);
      } catch (err) {
        failures.push(
          isLoomError(err) ? err : new LoomError('LOOM_ERR_INTERNAL', (err as Error).message, { cause: err }),
        );
      }
    }
    if (failures.length > 0) {
      throw new LoomError(
        failures[0].code,
        `could not load ${failures.length} active model(s): ${failures.map((e) => e.message).join('; ')}`,
        { cause: failures[0] },
      );
    }
  }

  /** The loaded `version` of `name`, or its default version when `version` is omitted. */
  get(name: string, version?: number): ServedModel | undefined {
    const entry = this.entries.get(name);
    return entry?.slots.get(version ?? entry.current)?.served;
  }

  /** Every loaded version, by name then load order. */
  list(): ServedModel[] {
    return [...this.entries.values()].flatMap((e) => e.order.map((v) => e.slots.get(v)!.served));
  }

  /**
   * Runs a batch of `batch` examples (`inputs` row-major, `batch * product(inputShape)`
   * values) through `name`@`version` (default version when undefined). Throws
   * LOOM_ERR_MODEL_UNAVAILABLE when nothing is loaded, LOOM_ERR_NOT_FOUND for an unknown
   * name or version and LOOM_ERR_INFERENCE_INPUT for a wrong input length.
   */
  async predict(
    name: string,
    version: number | undefined,
    inputs: Float32Array,
    batch: number,
  ): Promise<Prediction> {
    // Taking the slot and counting the request happen in one synchronous step, so a swap can
    // never dispose the model between the two.
    const slot = this.resolve(name, version);
    const { model, inputShape, classes } = slot.served;
    const size = product(inputShape);
    if (!Number.isSafeInteger(batch) || batch < 1) {
      throw new LoomError('LOOM_ERR_INFERENCE_INPUT', 'batch size must be a positive integer');
    }
    if (!(inputs instanceof Float32Array) || inputs.length !== batch * size) {
      throw new LoomError(
        'LOOM_ERR_INFERENCE_INPUT',
        `expected ${batch} x ${size} = ${batch * size} input values, got ${inputs?.length ?? 0}`,
      );
    }
    slot.inFlight++;
    try {
      const [probs, cls] = tf.tidy(() => {
        const y = model.predict(tf.tensor(inputs, [batch, ...inputShape], 'float32')) as tf.Tensor;
        return [y, y.argMax(-1)];
      });
      try {
        const [p, c] = await Promise.all([probs.data(), cls.data()]);
        if (p.length !== batch * classes) {
          throw new LoomError('LOOM_ERR_INTERNAL', `model "${name}" returned ${p.length} values`);
        }
        return {
          version: slot.served.version,
          probabilities: Float32Array.from(p),
          classes: Int32Array.from(c),
        };
      } finally {
        tf.dispose([probs, cls]);
      }
    } finally {
      slot.inFlight--;
      release(slot);
    }
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

  private resolve(name: string, version: number | undefined): Slot {
    if (this.entries.size === 0) {
      throw new LoomError('LOOM_ERR_MODEL_UNAVAILABLE', 'no model is loaded yet');
    }
    const entry = this.entries.get(name);
    if (!entry) throw new LoomError('LOOM_ERR_NOT_FOUND', `model "${name}" is not loaded`);
    const slot = entry.slots.get(version ?? entry.current);
    if (!slot) {
      throw new LoomError(
        'LOOM_ERR_NOT_FOUND',
        `model "${name}" version ${version} is not loaded (loaded: ${entry.order.join(', ')})`,
      );
    }
    return slot;
  }

  private async loadNow(name: string, version: number): Promise<ServedModel> {
    if (this.disposed) throw new LoomError('LOOM_ERR_MODEL_UNAVAILABLE', 'the model server is shut down');
    const loaded = this.entries.get(name)?.slots.get(version);
    if (loaded) {
      this.makeCurrent(name, loaded);
      return loaded.served;
    }
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
    this.makeCurrent(name, { served, inFlight: 0, retired: false });
    return served;
  }

  /** The swap: one synchronous reference change, then retire what falls out of the window. */
  private makeCurrent(name: string, slot: Slot): void {
    const { version } = slot.served;
    let entry = this.entries.get(name);
    if (!entry) {
      entry = { current: version, slots: new Map(), order: [] };
      this.entries.set(name, entry);
    }
    entry.slots.set(version, slot);
    entry.current = version;
    entry.order = [...entry.order.filter((v) => v !== version), version];
    while (entry.order.length > KEEP_VERSIONS) {
      const old = entry.slots.get(entry.order.shift()!)!;
      entry.slots.delete(old.served.version);
      old.retired = true;
      release(old);
    }
  }
}

// The CPU engine: folds each update into a float32 running sum in one streaming pass.
import { LoomError } from '../../shared/errors/index.ts';
import { countParams, sizeOf, type WeightSpec, type WeightTensor } from '../../shared/tensors/index.ts';
import { createFoldKernel, type FoldKernel, KERNEL_STEP_BYTES, MAX_KERNEL_BYTES } from './fold-kernel.ts';
import type { AggregationEngine, Aggregator, AggregatorOptions, FoldOptions, FoldReport } from './types.ts';
import {
  checkFoldable,
  checkNorm,
  clipNormOf,
  copySpecs,
  hasNonFinite,
  maxNormOf,
  nonFiniteRejection,
  overflowRejection,
  unusable,
} from './validate.ts';

const STEP_VALUES = KERNEL_STEP_BYTES / 4;
/**
 * Values staged per kernel call. The update lives in JS memory, which the kernel cannot read, so
 * it is copied through this buffer; 256 KiB stays in L2 (1 MiB here) between the copy and the fold
 * (measured: 128 KiB and 512 KiB both fold slower).
 */
const STAGE_VALUES = 65536;

interface State {
  kernel: FoldKernel;
  /** The whole kernel memory as float32. */
  values: Float32Array;
  /** Value offsets of the running sum and of the spare buffer the next fold writes into. */
  sumAt: number;
  spareAt: number;
  stageAt: number;
  stageValues: number;
  stage: Float32Array;
}

function roundUp(n: number, step: number): number {
  return Math.ceil(n / step) * step;
}

class TypedArrayAggregator implements Aggregator {
  readonly #specs: WeightSpec[];
  readonly #maxNorm: number;
  #state: State | undefined;
  #count = 0;
  #closed = false;
  #totalWeight = 0;

  constructor(specs: readonly WeightSpec[], options?: AggregatorOptions) {
    this.#specs = copySpecs(specs);
    this.#maxNorm = maxNormOf(options);
    // Two sums (current and next) so a rejected update never touches the current one.
    const padded = roundUp(Math.max(countParams(this.#specs), 1), STEP_VALUES);
    const stageValues = Math.min(STAGE_VALUES, padded);
    const bytes = (2 * padded + stageValues) * 4;
    if (bytes > MAX_KERNEL_BYTES) {
      throw new LoomError(
        'LOOM_ERR_INVALID_ARGUMENT',
        `model of ${countParams(this.#specs)} values is too large`,
      );
    }
    const kernel = createFoldKernel(bytes);
    const values = new Float32Array(kernel.buffer);
    // Commits every page now, so page faults (tens of ms per 10 MB on a VM) land on round set-up
    // rather than on the first folds, and a lack of memory shows here.
    values.fill(0);
    const stageAt = 2 * padded;
    this.#state = {
      kernel,
      values,
      sumAt: 0,
      spareAt: padded,
      stageAt,
      stageValues,
      stage: values.subarray(stageAt, stageAt + stageValues),
    };
  }

  get count(): number {
    return this.#count;
  }

  get totalWeight(): number {
    return this.#totalWeight;
  }

  #live(): State {
    if (!this.#state) throw unusable('aggregator has been disposed');
    return this.#state;
  }

  fold(update: readonly WeightTensor[], weight: number, options: FoldOptions = {}): FoldReport {
    const s = this.#live();
    checkFoldable(this.#closed, this.#specs, update, weight);
    const clip = clipNormOf(options.clipNorm);
    let squares = this.#pass(s, update, weight);
    if (!Number.isFinite(squares)) {
      // The weighted sum went non-finite: a NaN or infinity sent, or values so large that only
      // clipping them first keeps the sum finite. A weight-0 pass measures them without overflow.
      if (clip === Number.POSITIVE_INFINITY || hasNonFinite(update)) throw badValues(update, weight);
      squares = this.#pass(s, update, 0);
      if (!Number.isFinite(squares) || Math.sqrt(squares) <= clip) throw overflowRejection(weight);
    }
    const norm = Math.sqrt(squares);
    checkNorm(norm, this.#maxNorm);
    let scale = 1;
    if (norm > clip) {
      // Rare path: the first pass shows the update is too large; fold it again, scaled down.
      scale = clip / norm;
      if (!Number.isFinite(this.#pass(s, update, weight * scale))) throw overflowRejection(weight * scale);
    }
    const { sumAt } = s;
    s.sumAt = s.spareAt;
    s.spareAt = sumAt;
    this.#count += 1;
    this.#totalWeight += weight;
    return { norm, scale };
  }

  measure(update: readonly WeightTensor[]): number {
    const s = this.#live();
    checkFoldable(this.#closed, this.#specs, update, 1);
    // Weight 0 writes the sum itself into the spare, which nothing reads: only the squares count,
    // and 0 * x is NaN exactly when x is not finite.
    const squares = this.#pass(s, update, 0);
    if (!Number.isFinite(squares)) throw nonFiniteRejection(update);
    const norm = Math.sqrt(squares);
    checkNorm(norm, this.#maxNorm);
    return norm;
  }

  /**
   * One streaming pass: `spare = sum + weight * update` and the float64 sum of squares of the
   * update. Returns a non-finite number, at the first chunk that shows it, when a value of the
   * update is not finite or a value of the new sum overflowed. The sum itself is never written.
   */
  #pass(s: State, update: readonly WeightTensor[], weight: number): number {
    const { kernel, stage, stageValues } = s;
    const stageByte = s.stageAt * 4;
    let sumByte = s.sumAt * 4;
    let spareByte = s.spareAt * 4;
    let fill = 0;
    let squares = 0;
    for (let t = 0; t < update.length; t++) {
      const data = update[t].data;
      for (let pos = 0; pos < data.length; ) {
        const take = Math.min(stageValues - fill, data.length - pos);
        stage.set(data.subarray(pos, pos + take), fill);
        fill += take;
        pos += take;
        if (fill === stageValues) {
          const bytes = fill * 4;
          squares += kernel.fold(stageByte, sumByte, spareByte, bytes, weight);
          // Stop at the first bad chunk: nothing has been committed, so nothing needs undoing.
          if (!Number.isFinite(squares)) return squares;
          sumByte += bytes;
          spareByte += bytes;
          fill = 0;
        }
      }
    }
    if (fill > 0) {
      // Zero padding folds as zeros into the padding of the sums, which average() never reads.
      const padded = roundUp(fill, STEP_VALUES);
      stage.fill(0, fill, padded);
      squares += kernel.fold(stageByte, sumByte, spareByte, padded * 4, weight);
    }
    return squares;
  }

  average(): WeightTensor[] {
    const { values, sumAt, spareAt } = this.#live();
    if (this.#count === 0) throw unusable('no updates folded');
    // The mean goes into the spare half, whose pages were committed up front: fresh arrays would
    // page-fault their way in on the hot path. Folding then ends, as the spare is no longer free.
    this.#closed = true;
    const total = this.#totalWeight;
    let offset = 0;
    return this.#specs.map((spec) => {
      const n = sizeOf(spec.shape);
      const out = values.subarray(spareAt + offset, spareAt + offset + n);
      const from = sumAt + offset;
      for (let i = 0; i < n; i++) out[i] = values[from + i] / total;
      offset += n;
      return { name: spec.name, shape: [...spec.shape], dtype: 'float32', data: out };
    });
  }

  dispose(): void {
    // Dropping the only references lets the collector free the kernel memory.
    this.#state = undefined;
  }
}

/** The rejection for a pass that went non-finite: a NaN or infinity sent, or else an overflow. */
function badValues(update: readonly WeightTensor[], weight: number): LoomError {
  return hasNonFinite(update) ? nonFiniteRejection(update) : overflowRejection(weight);
}

/** The typed-array engine: float32 sums in WebAssembly memory, one streaming pass per update. */
export const typedArrayEngine: AggregationEngine = {
  name: 'typed-array',
  createAggregator: (specs, options) => new TypedArrayAggregator(specs, options),
};

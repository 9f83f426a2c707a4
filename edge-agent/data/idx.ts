// The IDX file format of MNIST: a big-endian header (magic, dimensions) then unsigned bytes.
import { open, writeFile } from 'node:fs/promises';
import { LoomError } from '../../shared/errors/index.ts';
import { sizeOf } from '../../shared/tensors/index.ts';

/** Magic numbers of the two IDX files we read: 0x08 = unsigned bytes, low byte = number of dims. */
export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

/** Part of an IDX file: the full dimensions from its header and the bytes of the examples read. */
export interface IdxRange {
  /** Dimensions from the header; `dims[0]` is the number of examples in the whole file. */
  dims: number[];
  /** Number of examples read. */
  count: number;
  /** The examples read, `count * sizeOf(dims.slice(1))` bytes. */
  data: Uint8Array;
}

/** Reads exactly `buf.length` bytes at `position`; a plain read may return fewer for big ranges. */
async function readFully(
  handle: Awaited<ReturnType<typeof open>>,
  file: string,
  buf: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw dataError(`${file}: ended while reading (was it changed meanwhile?)`);
    done += bytesRead;
  }
}

function dataError(message: string, cause?: unknown): LoomError {
  return new LoomError('LOOM_ERR_DATA', message, cause === undefined ? {} : { cause });
}

/**
 * Reads examples `[offset, offset + limit)` of an IDX file, checking its magic number and that
 * its length matches its header. Only the header and the requested byte range are read, so a
 * small slice of a large file stays cheap. Throws LOOM_ERR_DATA naming the file. `limit`
 * defaults to the rest of the file.
 */
export async function readIdxRange(
  file: string,
  magic: number,
  offset = 0,
  limit?: number,
): Promise<IdxRange> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw dataError(`cannot read ${file}: ${(err as Error).message}`, err);
  }
  try {
    const { size } = await handle.stat();
    if (size < 4) throw dataError(`${file}: is ${size} bytes, too short for an IDX header`);
    const head = Buffer.alloc(4);
    await readFully(handle, file, head, 0);
    const found = head.readUInt32BE(0);
    if (found !== magic) {
      throw dataError(
        `${file}: magic number 0x${found.toString(16).padStart(8, '0')} is not 0x${magic
          .toString(16)
          .padStart(8, '0')} (not an IDX ${magic === IDX_IMAGES_MAGIC ? 'images' : 'labels'} file)`,
      );
    }
    const ndims = magic & 0xff;
    const headerLen = 4 + 4 * ndims;
    if (size < headerLen) throw dataError(`${file}: is truncated inside its header`);
    const dimBuf = Buffer.alloc(4 * ndims);
    await readFully(handle, file, dimBuf, 4);
    const dims = Array.from({ length: ndims }, (_, i) => dimBuf.readUInt32BE(4 * i));
    if (dims.slice(1).some((d) => d === 0)) throw dataError(`${file}: has a zero dimension [${dims}]`);
    const itemSize = sizeOf(dims.slice(1));
    const expected = headerLen + dims[0] * itemSize;
    if (size !== expected) {
      throw dataError(
        size < expected
          ? `${file}: is truncated: ${size} bytes, its header [${dims}] needs ${expected}`
          : `${file}: has ${size - expected} bytes after the data its header [${dims}] describes`,
      );
    }
    if (offset > dims[0]) throw dataError(`${file}: offset ${offset} is past its ${dims[0]} examples`);
    const count = Math.min(limit ?? dims[0] - offset, dims[0] - offset);
    const data = new Uint8Array(count * itemSize);
    await readFully(handle, file, data, headerLen + offset * itemSize);
    return { dims, count, data };
  } finally {
    await handle.close();
  }
}

function idxFile(magic: number, dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => {
    header.writeUInt32BE(d, 4 + 4 * i);
  });
  return Buffer.concat([header, data]);
}

/**
 * Writes MNIST-format IDX files: `images` holds `count * rows * cols` bytes where
 * `count = labels.length`. Throws LOOM_ERR_INVALID_ARGUMENT when the sizes disagree.
 */
export async function writeIdx(
  imagesPath: string,
  labelsPath: string,
  images: Uint8Array,
  labels: Uint8Array,
  rows: number,
  cols: number,
): Promise<void> {
  const count = labels.length;
  if (!Number.isSafeInteger(rows) || rows <= 0 || !Number.isSafeInteger(cols) || cols <= 0) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `rows and cols must be positive integers`);
  }
  if (images.length !== count * rows * cols) {
    throw new LoomError(
      'LOOM_ERR_INVALID_ARGUMENT',
      `images has ${images.length} bytes, ${count} labels of ${rows}x${cols} need ${count * rows * cols}`,
    );
  }
  await writeFile(imagesPath, idxFile(IDX_IMAGES_MAGIC, [count, rows, cols], images));
  await writeFile(labelsPath, idxFile(IDX_LABELS_MAGIC, [count], labels));
}

// Tests of the edge agent's local data loading: IDX, CSV and JSONL files, and shape checks.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkDatasetShape,
  type LocalDataset,
  loadDataset,
  readMnist,
  writeIdx,
} from '../../edge-agent/data/index.ts';
import { isLoomError, type LoomErrorCode } from '../../shared/errors/index.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loom-agent-data-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `fn` and returns the LoomError it throws, failing the test if it throws anything else. */
async function loomError(fn: () => Promise<unknown> | unknown, code: LoomErrorCode) {
  try {
    await fn();
  } catch (err) {
    if (!isLoomError(err)) throw err;
    expect(err.code).toBe(code);
    return err;
  }
  throw new Error('expected a LoomError');
}

describe('IDX files', () => {
  it('round trip through writeIdx and loadDataset with pixels scaled to [0, 1]', async () => {
    const images = Uint8Array.from({ length: 3 * 2 * 2 }, (_, i) => i * 20);
    const labels = Uint8Array.from([7, 0, 9]);
    const imagesPath = join(dir, 'tiny-images-idx3-ubyte');
    await writeIdx(imagesPath, join(dir, 'tiny-labels-idx1-ubyte'), images, labels, 2, 2);

    const ds = await loadDataset(imagesPath);
    expect(ds.count).toBe(3);
    expect(ds.featureShape).toEqual([2, 2]);
    expect(Array.from(ds.labels)).toEqual([7, 0, 9]);
    expect(ds.x[5]).toBeCloseTo(100 / 255);
    expect(ds.source).toBe(imagesPath);
  });

  it('read a real MNIST slice written as a directory and honour limit', async () => {
    const mnist = await readMnist('test', { offset: 10, limit: 20 });
    expect(mnist).toMatchObject({ count: 20, rows: 28, cols: 28 });
    const sub = join(dir, 'mnist-dir');
    await mkdir(sub);
    await writeIdx(
      join(sub, 'part-images-idx3-ubyte'),
      join(sub, 'part-labels-idx1-ubyte'),
      mnist.images,
      mnist.labels,
      28,
      28,
    );
    const ds = await loadDataset(sub, { limit: 5 });
    expect(ds.count).toBe(5);
    expect(ds.x.length).toBe(5 * 784);
    expect(Array.from(ds.labels)).toEqual(Array.from(mnist.labels.subarray(0, 5)));
    expect(Math.max(...ds.x)).toBeLessThanOrEqual(1);
  });

  it('readMnist reads the same bytes at an offset as from the start', async () => {
    const whole = await readMnist('test', { limit: 12 });
    const tail = await readMnist('test', { offset: 10, limit: 2 });
    expect(Array.from(tail.labels)).toEqual(Array.from(whole.labels.subarray(10, 12)));
    expect(Buffer.from(tail.images).equals(Buffer.from(whole.images.subarray(10 * 784, 12 * 784)))).toBe(
      true,
    );
  });

  it('reject a truncated images file, naming it', async () => {
    const imagesPath = join(dir, 'cut-images-idx3-ubyte');
    await writeIdx(
      imagesPath,
      join(dir, 'cut-labels-idx1-ubyte'),
      new Uint8Array(2 * 9),
      new Uint8Array(2),
      3,
      3,
    );
    const bytes = await readFile(imagesPath);
    await writeFile(imagesPath, bytes.subarray(0, bytes.length - 4));
    const err = await loomError(() => loadDataset(imagesPath), 'LOOM_ERR_DATA');
    expect(err.message).toContain(imagesPath);
    expect(err.message).toMatch(/truncated/);
  });

  it('reject a file with a bad magic number, naming it', async () => {
    const imagesPath = join(dir, 'magic-images-idx3-ubyte');
    const labelsPath = join(dir, 'magic-labels-idx1-ubyte');
    await writeIdx(imagesPath, labelsPath, new Uint8Array(4), new Uint8Array(1), 2, 2);
    const bytes = await readFile(labelsPath);
    bytes.writeUInt32BE(0x00000803, 0);
    await writeFile(labelsPath, bytes);
    const err = await loomError(() => loadDataset(imagesPath), 'LOOM_ERR_DATA');
    expect(err.message).toContain(labelsPath);
    expect(err.message).toMatch(/magic number/);
  });

  it('reject image and label files that disagree on the count', async () => {
    const imagesPath = join(dir, 'odd-images-idx3-ubyte');
    const labelsPath = join(dir, 'odd-labels-idx1-ubyte');
    await writeIdx(imagesPath, labelsPath, new Uint8Array(4), new Uint8Array(1), 2, 2);
    // Same file names, now holding two labels: the images file still holds one image.
    await writeIdx(
      join(dir, 'other-images-idx3-ubyte'),
      labelsPath,
      new Uint8Array(8),
      new Uint8Array(2),
      2,
      2,
    );
    const err = await loomError(() => loadDataset(imagesPath), 'LOOM_ERR_DATA');
    expect(err.message).toMatch(/holds 2 labels.*holds 1 images/);
  });

  it('report a missing file as a data error', async () => {
    const err = await loomError(() => loadDataset(join(dir, 'nope-images-idx3-ubyte')), 'LOOM_ERR_DATA');
    expect(err.message).toContain('nope-images-idx3-ubyte');
  });
});

describe('CSV files', () => {
  it('load features and the label column by name', async () => {
    const file = join(dir, 'ok.csv');
    await writeFile(file, 'x1,y,x2\n1,0,2\n\n3,1,4.5\n');
    const ds = await loadDataset(file, { labelColumn: 'y' });
    expect(ds).toMatchObject({ count: 2, featureShape: [2], source: file });
    expect(Array.from(ds.x)).toEqual([1, 2, 3, 4.5]);
    expect(Array.from(ds.labels)).toEqual([0, 1]);
  });

  it('name the file, row and column of a cell that is not a number', async () => {
    const file = join(dir, 'data.csv');
    const rows = Array.from({ length: 20 }, (_, i) => `${i % 3},1,2,${i === 15 ? 'abc' : 3}`);
    await writeFile(file, ['label,x1,x2,x3', ...rows].join('\n'));
    const err = await loomError(() => loadDataset(file), 'LOOM_ERR_DATA');
    expect(err.message).toContain('data.csv row 17: column "x3" is not a number');
  });

  it('reject a row with the wrong number of columns and an empty cell', async () => {
    const file = join(dir, 'ragged.csv');
    await writeFile(file, 'label,a\n1,2\n1,2,3\n');
    expect((await loomError(() => loadDataset(file), 'LOOM_ERR_DATA')).message).toMatch(
      /row 3: has 3 columns/,
    );
    await writeFile(file, 'label,a\n1,\n');
    expect((await loomError(() => loadDataset(file), 'LOOM_ERR_DATA')).message).toMatch(/row 2: column "a"/);
  });

  it('reject a missing label column, a fractional label, an empty file and a header alone', async () => {
    const file = join(dir, 'bad.csv');
    await writeFile(file, 'a,b\n1,2\n');
    expect((await loomError(() => loadDataset(file), 'LOOM_ERR_DATA')).message).toMatch(/no "label" column/);
    await writeFile(file, 'label,b\n1.5,2\n');
    expect((await loomError(() => loadDataset(file), 'LOOM_ERR_DATA')).message).toMatch(/row 2: label/);
    await writeFile(file, '');
    expect((await loomError(() => loadDataset(file), 'LOOM_ERR_DATA')).message).toMatch(/empty/);
    await writeFile(file, 'label,b\n');
    expect((await loomError(() => loadDataset(file), 'LOOM_ERR_DATA')).message).toMatch(/no data rows/);
  });
});

describe('JSONL files', () => {
  it('load flat and nested examples, accepting "features" for "x"', async () => {
    const file = join(dir, 'ok.jsonl');
    await writeFile(
      file,
      '{"x": [[1, 2], [3, 4]], "label": 1}\n\n{"features": [[5, 6], [7, 8]], "label": 0}\n',
    );
    const ds = await loadDataset(file, { scale: 2 });
    expect(ds).toMatchObject({ count: 2, featureShape: [2, 2] });
    expect(Array.from(ds.x)).toEqual([0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]);
    expect(Array.from(ds.labels)).toEqual([1, 0]);
  });

  it('name the file and line of bad JSON', async () => {
    const file = join(dir, 'broken.ndjson');
    await writeFile(file, '{"x": [1], "label": 0}\n{"x": [2], "label": 1}\n{"x": [3], "label":\n');
    const err = await loomError(() => loadDataset(file), 'LOOM_ERR_DATA');
    expect(err.message).toContain('broken.ndjson line 3: is not valid JSON');
  });

  it('reject lines whose shape differs from the first, and missing labels', async () => {
    const file = join(dir, 'shapes.jsonl');
    await writeFile(file, '{"x": [1, 2], "label": 0}\n{"x": [1, 2, 3], "label": 0}\n');
    expect((await loomError(() => loadDataset(file), 'LOOM_ERR_DATA')).message).toMatch(
      /line 2: "x" has shape \[3\]/,
    );
    await writeFile(file, '{"x": [1, 2]}\n');
    expect((await loomError(() => loadDataset(file), 'LOOM_ERR_DATA')).message).toMatch(/line 1: "label"/);
    await writeFile(file, '\n\n');
    expect((await loomError(() => loadDataset(file), 'LOOM_ERR_DATA')).message).toMatch(/no examples/);
  });
});

describe('checkDatasetShape', () => {
  const ds: LocalDataset = {
    x: new Float32Array(3 * 4),
    labels: Int32Array.from([0, 1, 5]),
    count: 3,
    featureShape: [2, 2],
    source: 'local.csv',
  };

  it('accept data whose element count matches the model input', () => {
    expect(() => checkDatasetShape(ds, [4], 6)).not.toThrow();
    expect(() => checkDatasetShape(ds, [2, 2], 6)).not.toThrow();
  });

  it('reject a feature count that differs from the model input, naming the source', async () => {
    const err = await loomError(() => checkDatasetShape(ds, [784], 10), 'LOOM_ERR_DATA');
    expect(err.message).toMatch(/local\.csv example 1: has 4 features .* takes 784/);
  });

  it('reject the first label outside [0, classes)', async () => {
    const err = await loomError(() => checkDatasetShape(ds, [4], 3), 'LOOM_ERR_DATA');
    expect(err.message).toBe('local.csv example 3: label 5 is outside [0, 3)');
  });
});

describe('options', () => {
  it('reject a non-positive limit and scale as invalid arguments', async () => {
    await loomError(() => loadDataset(join(dir, 'ok.csv'), { limit: 0 }), 'LOOM_ERR_INVALID_ARGUMENT');
    await loomError(() => loadDataset(join(dir, 'ok.csv'), { scale: -1 }), 'LOOM_ERR_INVALID_ARGUMENT');
  });
});

describe('values outside the float32 range', () => {
  it('are refused in CSV and JSONL with the row or line named', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadDataset } = await import('../../edge-agent/data/index.ts');
    const dir = await mkdtemp(join(tmpdir(), 'loom-f32-'));
    try {
      await writeFile(join(dir, 'big.csv'), 'a,label\n1,0\n1e39,1\n');
      await expect(loadDataset(join(dir, 'big.csv'))).rejects.toMatchObject({
        code: 'LOOM_ERR_DATA',
        message: expect.stringMatching(/row 3.*float32/),
      });
      await writeFile(join(dir, 'big.jsonl'), '{"x":[1],"label":0}\n{"x":[-1e39],"label":1}\n');
      await expect(loadDataset(join(dir, 'big.jsonl'))).rejects.toMatchObject({
        code: 'LOOM_ERR_DATA',
        message: expect.stringMatching(/line 2.*float32/),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

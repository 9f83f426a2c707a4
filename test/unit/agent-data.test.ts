// Tests of the edge agent's local data loading: IDX, CSV and JSONL files, the checks of data
// against a model (every problem at once), and the bounded aggregate summary.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertDatasetFits,
  checkDataset,
  dataProblemsError,
  type LocalDataset,
  loadDataset,
  readMnist,
  SUMMARY_MAX_FEATURE_GROUPS,
  summarizeDataset,
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

describe('assertDatasetFits', () => {
  const ds: LocalDataset = {
    x: new Float32Array(3 * 4),
    labels: Int32Array.from([0, 1, 5]),
    count: 3,
    featureShape: [2, 2],
    source: 'local.csv',
  };

  it('accept data whose element count matches the model input', () => {
    expect(() => assertDatasetFits(ds, [4], 6)).not.toThrow();
    expect(() => assertDatasetFits(ds, [2, 2], 6)).not.toThrow();
  });

  it('reject a feature count that differs from the model input, naming the source and both counts', async () => {
    const err = await loomError(() => assertDatasetFits(ds, [784], 10), 'LOOM_ERR_DATA');
    expect(err.message).toMatch(/^local\.csv: each example has 4 features .* the model takes 784/);
  });

  it('reject labels outside [0, classes), naming the bad example', async () => {
    const err = await loomError(() => assertDatasetFits(ds, [4], 3), 'LOOM_ERR_DATA');
    expect(err.message).toBe('local.csv: 1 example has a label outside [0, 3): value 5 (example 3)');
  });
});

/** A dataset of `count` examples of `features` zeros with the given labels. */
function dataset(features: number, labels: number[], source = 'site.csv'): LocalDataset {
  return {
    x: new Float32Array(labels.length * features),
    labels: Int32Array.from(labels),
    count: labels.length,
    featureShape: [features],
    source,
  };
}

describe('checkDataset', () => {
  it('reports every problem at once: feature count, labels out of range, values that are not finite', () => {
    const labels = Array.from({ length: 40 }, (_, i) => (i === 3 || i === 20 ? 12 : i === 7 ? -1 : i % 10));
    const ds = dataset(783, labels);
    ds.x[5 * 783 + 2] = Number.NaN;
    ds.x[9 * 783] = Number.POSITIVE_INFINITY;
    const problems = checkDataset(ds, [784], 10);
    expect(problems.map((p) => p.kind)).toEqual([
      'feature-count',
      'labels-out-of-range',
      'non-finite-features',
    ]);
    expect(problems[0]).toMatchObject({ have: 783, want: 784 });
    expect(problems[0].message).toMatch(/783 features .* takes 784 .*one short/);
    expect(problems[1]).toMatchObject({ count: 3, values: [-1, 12], examples: [4, 8, 21], classes: 10 });
    expect(problems[1].message).toBe(
      '3 examples have labels outside [0, 10): values -1, 12 (examples 4, 8, 21)',
    );
    expect(problems[2]).toMatchObject({ count: 2, examples: [6, 10] });

    const err = dataProblemsError(ds.source, problems);
    expect(err.code).toBe('LOOM_ERR_DATA');
    expect(err.message).toMatch(
      /^site\.csv: 3 problems: \(1\) each example has 783 .*; \(2\) 3 examples .*; \(3\) 2 feature values/,
    );
    expect(err.details).toMatchObject({ source: 'site.csv', problems: [{ kind: 'feature-count' }, {}, {}] });
    // The details are plain data: they survive JSON as they are.
    expect(JSON.parse(JSON.stringify(err.details))).toEqual(err.details);
  });

  it('finds nothing wrong with MNIST images of shape [28, 28] for a [784] model', async () => {
    const mnist = await readMnist('test', { limit: 50 });
    const imagesPath = join(dir, 'fits-images-idx3-ubyte');
    await writeIdx(imagesPath, join(dir, 'fits-labels-idx1-ubyte'), mnist.images, mnist.labels, 28, 28);
    expect(checkDataset(await loadDataset(imagesPath), [784], 10)).toEqual([]);
  });

  it('reports a dataset with no examples, and lists at most a few example numbers and values', () => {
    expect(checkDataset(dataset(4, []), [4], 2).map((p) => p.kind)).toEqual(['no-examples']);
    const many = checkDataset(
      dataset(
        1,
        Array.from({ length: 500 }, (_, i) => 100 + i),
      ),
      [1],
      10,
    )[0];
    expect(many).toMatchObject({ kind: 'labels-out-of-range', count: 500, examples: [1, 2, 3, 4, 5] });
    expect(many.kind === 'labels-out-of-range' && many.values).toHaveLength(10);
    expect(many.message).toMatch(
      /^500 examples .*values 100, 101, .*109, \.\.\. \(examples 1, 2, 3, 4, 5, \.\.\.\)$/,
    );
  });

  it('says when labels look numbered from 1 and when the label column looks read as a feature', () => {
    const oneBased = checkDataset(dataset(4, [1, 2, 3, 10]), [4], 10);
    expect(oneBased[0].message).toMatch(/look numbered from 1: subtract 1/);
    expect(checkDataset(dataset(785, [0]), [784], 10)[0].message).toMatch(/one too many.*--label-column/);
  });

  it('treats wrong argument types as a programming error', () => {
    expect(() => checkDataset({} as LocalDataset, [4], 2)).toThrow(TypeError);
    expect(() => checkDataset(dataset(4, [0]), [4], 0)).toThrow(TypeError);
  });
});

describe('CSV separators and labels', () => {
  it('name the likely separator of a semicolon-separated file instead of listing 785 column names', async () => {
    const file = join(dir, 'semicolon.csv');
    const header = ['label', ...Array.from({ length: 784 }, (_, i) => `px${i}`)].join(';');
    const row = ['3', ...Array.from({ length: 784 }, () => '0,5')].join(';');
    await writeFile(file, `${header}\n${row}\n`);
    const err = await loomError(() => loadDataset(file), 'LOOM_ERR_DATA');
    expect(err.message).toMatch(/row 1: the header looks separated by ";", not ","/);
    expect(err.message).toMatch(/--csv-separator ';'/);
    expect(err.message).not.toMatch(/px100/);
  });

  it('load a semicolon or tab separated file given its separator', async () => {
    const semi = join(dir, 'semi.csv');
    await writeFile(semi, 'a;label;b\n1;0;2\n3;1;4\n');
    const ds = await loadDataset(semi, { separator: ';' });
    expect(ds).toMatchObject({ count: 2, featureShape: [2] });
    expect(Array.from(ds.x)).toEqual([1, 2, 3, 4]);
    const tab = join(dir, 'tab.csv');
    await writeFile(tab, 'label\ta\n1\t0.5\n');
    expect((await loomError(() => loadDataset(tab), 'LOOM_ERR_DATA')).message).toMatch(
      /looks separated by tab.*--csv-separator tab/,
    );
    expect(Array.from((await loadDataset(tab, { separator: '\t' })).x)).toEqual([0.5]);
  });

  it('name the separator of a row that differs from the header', async () => {
    const file = join(dir, 'mixed.csv');
    await writeFile(file, 'label,a,b\n1,2,3\n1;2;3\n');
    expect((await loomError(() => loadDataset(file), 'LOOM_ERR_DATA')).message).toMatch(
      /row 3: this row looks separated by ";"/,
    );
  });

  it('list only the first names of a long header that lacks the label column', async () => {
    const file = join(dir, 'wide.csv');
    await writeFile(
      file,
      `${Array.from({ length: 300 }, (_, i) => `c${i}`).join(',')}\n${'1,'.repeat(299)}1\n`,
    );
    const err = await loomError(() => loadDataset(file), 'LOOM_ERR_DATA');
    expect(err.message).toMatch(/no "label" column \(columns: c0, c1, .*c7, \.\.\. \(300 in all\)\)/);
  });

  it('refuse a separator that can appear in a number', async () => {
    await loomError(
      () => loadDataset(join(dir, 'semi.csv'), { separator: '.' }),
      'LOOM_ERR_INVALID_ARGUMENT',
    );
    await loomError(
      () => loadDataset(join(dir, 'semi.csv'), { separator: ';;' }),
      'LOOM_ERR_INVALID_ARGUMENT',
    );
  });

  it('refuse negative labels at load time in CSV and JSONL', async () => {
    const csv = join(dir, 'negative.csv');
    await writeFile(csv, 'label,a\n0,1\n-1,2\n');
    expect((await loomError(() => loadDataset(csv), 'LOOM_ERR_DATA')).message).toMatch(
      /row 3: label column "label" is negative; labels are class numbers 0, 1, 2/,
    );
    const jsonl = join(dir, 'negative.jsonl');
    await writeFile(jsonl, '{"x": [1], "label": -1}\n');
    expect((await loomError(() => loadDataset(jsonl), 'LOOM_ERR_DATA')).message).toMatch(
      /line 1: "label" -1 is negative/,
    );
  });
});

describe('IDX files with other names', () => {
  it('need the labels file given, and the error names --labels', async () => {
    const images = join(dir, 'scans.idx');
    const labels = join(dir, 'scan-classes.idx');
    await writeIdx(images, labels, new Uint8Array(2 * 4), Uint8Array.from([1, 0]), 2, 2);
    const err = await loomError(() => loadDataset(images), 'LOOM_ERR_DATA');
    expect(err.message).toMatch(/--labels PATH/);
    expect(Array.from((await loadDataset(images, { labelsPath: labels })).labels)).toEqual([1, 0]);
  });
});

describe('summarizeDataset', () => {
  it('counts examples and labels and gives each feature its min, max and mean', () => {
    const labels = [0, 1, 1, 2, 2, 2, 0, 1, 2, 2, 7, 7];
    const ds = dataset(3, labels);
    labels.forEach((_, i) => {
      ds.x.set([i, -i, 0.5], i * 3);
    });
    const s = summarizeDataset(ds);
    expect(s).toMatchObject({ examples: 12, features: 3, featureShape: [3], nonFiniteValues: 0 });
    expect(s.labels).toEqual([
      { value: 0, count: 2 },
      { value: 1, count: 3 },
      { value: 2, count: 5 },
      { value: 7, count: 2 },
    ]);
    expect(s.otherLabels).toEqual({ distinct: 0, examples: 0 });
    expect(s.featureStats).toEqual({
      groupSize: 1,
      groups: 3,
      min: [0, -11, 0.5],
      max: [11, -0, 0.5],
      mean: [5.5, -5.5, 0.5],
    });
  });

  it('stays bounded whatever the input: contiguous feature groups and a capped label list', () => {
    const features = 3000;
    const count = 2000;
    const ds = dataset(
      features,
      Array.from({ length: count }, (_, i) => i),
    );
    for (let i = 0; i < count; i++) ds.x[i * features + 2999] = 1;
    ds.x[4] = Number.NaN;
    const s = summarizeDataset(ds);
    const stats = s.featureStats!;
    expect(stats.groupSize).toBe(3);
    expect(stats.groups).toBe(1000);
    expect(stats.groups).toBeLessThanOrEqual(SUMMARY_MAX_FEATURE_GROUPS);
    expect(stats.mean[999]).toBeCloseTo(1 / 3);
    expect(stats.max[999]).toBe(1);
    expect(s.nonFiniteValues).toBe(1);
    expect(s.labels).toHaveLength(1024);
    expect(s.otherLabels).toEqual({ distinct: 976, examples: 976 });
    const wide = summarizeDataset(
      dataset(
        200_000,
        Array.from({ length: 10 }, () => 0),
      ),
    );
    expect(wide.featureStats?.groups).toBeLessThanOrEqual(SUMMARY_MAX_FEATURE_GROUPS);
    expect(JSON.stringify(wide).length).toBeLessThan(40_000);
  });

  it('holds plain numbers only, and withholds feature statistics from fewer than 10 examples', () => {
    const few = dataset(2, [0, 1, 1]);
    few.x.set([0.25, 4, 1, 2, 3, 5]);
    const s = summarizeDataset(few);
    expect(s.featureStats).toBeNull();
    expect(s.labels).toEqual([
      { value: 0, count: 1 },
      { value: 1, count: 2 },
    ]);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect(summarizeDataset(few, { minExamplesForFeatureStats: 3 }).featureStats?.max).toEqual([3, 5]);
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

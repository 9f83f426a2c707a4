// Fuzz targets of the local data loaders: CSV, JSONL and IDX files with arbitrary and mutated
// contents, under every way of naming them, loaded with loadDataset. A load fails with LOOM_ERR_DATA
// (bad file) or LOOM_ERR_INVALID_ARGUMENT (bad option), or gives a consistent dataset; a dataset
// written in any of the three formats loads back with the same values and labels.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as fc from 'fast-check';
import {
  type DataFormat,
  type LoadOptions,
  type LocalDataset,
  loadDataset,
} from '../../../edge-agent/data/index.ts';
import { sizeOf } from '../../../shared/tensors/index.ts';
import { applyByteEdits, byteEdit, mutated } from '../harness/mutate.ts';
import { asyncOutcomeOf, invariant } from '../harness/outcome.ts';
import { defineTarget } from '../harness/target.ts';
import { makeTempDir, removeTempDir } from '../harness/temp-dirs.ts';
import { anyValue, EDGE_NUMBERS } from '../harness/values.ts';

/** One file of a case, relative to the case folder. */
interface DataFile {
  name: string;
  content: string | Uint8Array;
}

/** Files to write, the path handed to loadDataset (relative; '.' is the folder itself) and the options. */
export interface DataCase {
  files: DataFile[];
  path: string;
  options: LoadOptions;
}

interface DataContext {
  dir: string;
  caseDir: string;
}

/** A small table of examples: features of `featureShape` and integer labels. */
interface Table {
  featureShape: number[];
  rows: { x: number[]; label: number }[];
}

const feature = (): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: -1000, max: 1000 }) },
    {
      weight: 4,
      arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }).filter((v) => !Object.is(v, -0)),
    },
    { weight: 1, arbitrary: fc.constantFrom(3.4e38, -3.4e38, 1e-45, 1e-300, 0.1) },
  );
/** Class numbers 0, 1, 2, ... up to the int32 limit; with `invalid`, also the negative ones loaders refuse. */
const label = (invalid: boolean): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 9 }) },
    { weight: 1, arbitrary: fc.constant(2 ** 31 - 1) },
    ...(invalid ? [{ weight: 1, arbitrary: fc.constantFrom(-1, -(2 ** 31), 2 ** 31) }] : []),
  );

function table(
  shape: fc.Arbitrary<number[]>,
  value: fc.Arbitrary<number> = feature(),
  opts: { invalidLabels?: boolean } = {},
): fc.Arbitrary<Table> {
  return shape.chain((featureShape) => {
    const size = sizeOf(featureShape);
    return fc
      .array(
        fc.record({
          x: fc.array(value, { minLength: size, maxLength: size }),
          label: label(opts.invalidLabels ?? false),
        }),
        {
          minLength: 1,
          maxLength: 6,
        },
      )
      .map((rows) => ({ featureShape, rows }));
  });
}

const flatShape = () => fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 1 });

/** How a CSV writer might render a number or a cell. */
const cellStyle = () => fc.constantFrom('plain', 'plain', 'plain', 'quoted', 'spaced', 'exponent');

function csvCell(v: number, style: string): string {
  switch (style) {
    case 'quoted':
      return `"${v}"`;
    case 'spaced':
      return ` ${v} `;
    case 'exponent':
      return v.toExponential();
    default:
      return String(v);
  }
}

/** CSV text of `t`: label column anywhere, optional BOM, CRLF, blank lines, quoted or spaced cells. */
interface CsvLayout {
  labelAt: number;
  style: string;
  bom: boolean;
  crlf: boolean;
  blank: boolean;
  labelName: string;
  separator: string;
}

function csvText(t: Table, opts: CsvLayout): string {
  const names = t.rows[0].x.map((_, i) => `f${i}`);
  names.splice(opts.labelAt % (names.length + 1), 0, opts.labelName);
  const at = names.indexOf(opts.labelName);
  const lines = [names.join(opts.separator)];
  for (const row of t.rows) {
    const cells = row.x.map((v) => csvCell(v, opts.style));
    cells.splice(at, 0, String(row.label));
    lines.push(cells.join(opts.separator));
    if (opts.blank) lines.push('');
  }
  const eol = opts.crlf ? '\r\n' : '\n';
  return `${opts.bom ? '\ufeff' : ''}${lines.join(eol)}${eol}`;
}

const csvLayout = () =>
  fc.record({
    labelAt: fc.nat(),
    style: cellStyle(),
    bom: fc.boolean(),
    crlf: fc.boolean(),
    blank: fc.boolean(),
    labelName: fc.constant('label'),
    separator: fc.oneof(
      { weight: 4, arbitrary: fc.constant(',') },
      { weight: 1, arbitrary: fc.constantFrom(';', '\t', '|') },
    ),
  });

/** The load options a CSV written with `layout` needs. */
const csvOptions = (layout: CsvLayout): LoadOptions =>
  layout.separator === ',' ? {} : { separator: layout.separator };

/** JSONL lines of `t`, `x` flat or as rows, under "x" or "features". */
function jsonlText(t: Table, opts: { key: 'x' | 'features'; rows: number; blank: boolean }): string {
  const lines = t.rows.map((r) => {
    const x =
      opts.rows > 1 && r.x.length % opts.rows === 0
        ? Array.from({ length: opts.rows }, (_, i) =>
            r.x.slice((i * r.x.length) / opts.rows, ((i + 1) * r.x.length) / opts.rows),
          )
        : r.x;
    return JSON.stringify({ [opts.key]: x, label: r.label });
  });
  return `${lines.join(opts.blank ? '\n\n' : '\n')}\n`;
}

function idxFile(magic: number, dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => {
    header.writeUInt32BE(d, 4 + 4 * i);
  });
  return Buffer.concat([header, data]);
}

/** An MNIST-style images/labels pair of `count` images of rows × cols pixels. */
const idxPair = () =>
  fc
    .record({
      count: fc.integer({ min: 1, max: 4 }),
      rows: fc.integer({ min: 1, max: 4 }),
      cols: fc.integer({ min: 1, max: 4 }),
    })
    .chain(({ count, rows, cols }) =>
      fc.record({
        images: fc
          .uint8Array({ minLength: count * rows * cols, maxLength: count * rows * cols })
          .map((px) => idxFile(0x0803, [count, rows, cols], px)),
        labels: fc.uint8Array({ minLength: count, maxLength: count }).map((l) => idxFile(0x0801, [count], l)),
      }),
    );

/** Options: mostly sensible values, else values at and past their limits. */
function options(format: DataFormat): fc.Arbitrary<LoadOptions> {
  const sometimesOdd = <T>(good: fc.Arbitrary<T>, odd: readonly unknown[]) =>
    fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: fc.constantFrom(...odd) });
  return fc
    .record(
      {
        format: sometimesOdd(fc.constant(format), ['csv', 'jsonl', 'idx', 'xml', '']),
        scale: sometimesOdd(fc.constantFrom(1, 255, 0.5, 1e-3, 1e6), EDGE_NUMBERS),
        limit: sometimesOdd(fc.integer({ min: 1, max: 5 }), [0, -1, 1.5, Number.NaN, 2 ** 53]),
        labelColumn: sometimesOdd(fc.constant('label'), ['y', '', ' ', 'f0', 'Label', 'label ']),
        separator: sometimesOdd(fc.constantFrom(',', ';', '\t', '|'), [
          '',
          ',,',
          'e',
          '"',
          '\n',
          '.',
          '-',
          '😀',
        ]),
      },
      { requiredKeys: [] },
    )
    .map((o) => o as LoadOptions);
}

function withOptions(
  files: fc.Arbitrary<DataFile[]>,
  path: fc.Arbitrary<string>,
  format: DataFormat,
): fc.Arbitrary<DataCase> {
  return fc.record({
    files,
    path,
    options: fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 2, arbitrary: options(format) }),
  });
}

/** Text, or its UTF-8 bytes with a few bytes changed. */
function maybeEdited(text: fc.Arbitrary<string>): fc.Arbitrary<string | Uint8Array> {
  return fc.oneof(
    { weight: 2, arbitrary: text },
    {
      weight: 2,
      arbitrary: fc
        .tuple(text, fc.array(byteEdit(), { minLength: 1, maxLength: 4 }))
        .map(([t, e]) => new Uint8Array(applyByteEdits(Buffer.from(t), e))),
    },
  );
}

function csvCases(): fc.Arbitrary<DataCase> {
  // Each content comes with the options its writer's separator needs.
  const valid = fc
    .tuple(table(flatShape(), feature(), { invalidLabels: true }), csvLayout())
    .map(([t, layout]) => ({ text: csvText(t, layout), options: csvOptions(layout) }));
  // The table as cells, one field changed: a cell, a column, a row.
  const cellTable = fc
    .tuple(table(flatShape(), feature(), { invalidLabels: true }), csvLayout())
    .map(([t, layout]) =>
      csvText(t, { ...layout, separator: ',' })
        .trim()
        .split(/\r?\n/)
        .map((l) => l.split(',')),
    );
  const mutatedTable = mutated(cellTable, { replacement: anyValue() }).map((rows) =>
    Array.isArray(rows)
      ? rows.map((r) => (Array.isArray(r) ? r.map(String).join(',') : String(r))).join('\n')
      : String(rows),
  );
  const plain = (text: fc.Arbitrary<string | Uint8Array>) => text.map((t) => ({ text: t, options: {} }));
  const content = fc.oneof(
    {
      weight: 5,
      arbitrary: valid.chain((v) =>
        maybeEdited(fc.constant(v.text)).map((text) => ({ text, options: v.options })),
      ),
    },
    { weight: 2, arbitrary: plain(mutatedTable) },
    plain(fc.string({ unit: 'binary', maxLength: 80 })),
    plain(fc.uint8Array({ maxLength: 80 })),
    plain(
      fc.constantFrom(
        '',
        '\ufeff',
        'label\n',
        'label,f0\n',
        '\n\n',
        'label,label\n1,2\n',
        ',\n1\n',
        'label;f0\n1;2\n',
      ),
    ),
  );
  return fc
    .tuple(
      content,
      withOptions(
        fc.constant([]),
        fc.oneof(
          { weight: 8, arbitrary: fc.constant('data.csv') },
          { weight: 1, arbitrary: fc.constantFrom('missing.csv', '.') },
        ),
        'csv',
      ),
    )
    .map(([c, base]) => ({
      files: [{ name: 'data.csv', content: c.text }],
      path: base.path,
      // The generated options win: a wrong separator for the file is a case too.
      options: { ...c.options, ...base.options },
    }));
}

function jsonlCases(): fc.Arbitrary<DataCase> {
  const layout = fc.record({
    key: fc.constantFrom('x' as const, 'features' as const),
    rows: fc.constantFrom(1, 2),
    blank: fc.boolean(),
  });
  const valid = fc
    .tuple(table(flatShape(), feature(), { invalidLabels: true }), layout)
    .map(([t, l]) => jsonlText(t, l));
  const lines = fc.tuple(table(flatShape(), feature(), { invalidLabels: true }), layout).map(([t, l]) =>
    jsonlText(t, l)
      .trim()
      .split('\n')
      .filter((s) => s !== '')
      .map((s) => JSON.parse(s) as unknown),
  );
  const mutatedLines = mutated(lines, { replacement: anyValue(), maxMutations: 3 }).map((ls) =>
    Array.isArray(ls) ? ls.map((l) => JSON.stringify(l) ?? '').join('\n') : (JSON.stringify(ls) ?? ''),
  );
  const content = fc.oneof(
    { weight: 5, arbitrary: maybeEdited(valid) },
    { weight: 2, arbitrary: mutatedLines },
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.uint8Array({ maxLength: 80 }),
    fc.constantFrom(
      '',
      '{}',
      '[]',
      'null',
      '{"x":[1],"label":0}\n{"x":[1,2],"label":0}',
      '{"x":[[1],[2,3]],"label":0}',
      '{"x":[[[1]]],"label":0}',
      `{"x":${'['.repeat(5000)}${']'.repeat(5000)},"label":0}`,
    ),
  );
  return withOptions(
    content.map((c) => [{ name: 'data.jsonl', content: c }]),
    fc.oneof(
      { weight: 8, arbitrary: fc.constant('data.jsonl') },
      { weight: 1, arbitrary: fc.constant('missing.jsonl') },
    ),
    'jsonl',
  ).chain((c) =>
    fc.constantFrom('data.jsonl', 'data.ndjson').map((name) => ({
      ...c,
      files: c.files.map((f) => ({ ...f, name })),
      path: c.path === 'missing.jsonl' ? c.path : name,
    })),
  );
}

function idxCases(): fc.Arbitrary<DataCase> {
  const edits = fc.oneof(
    { weight: 3, arbitrary: fc.constant([]) },
    { weight: 2, arbitrary: fc.array(byteEdit(), { minLength: 1, maxLength: 3 }) },
  );
  const pair = fc
    .tuple(idxPair(), edits, edits)
    .map(([p, ei, el]) => ({ images: applyByteEdits(p.images, ei), labels: applyByteEdits(p.labels, el) }));
  const naming = fc.constantFrom('derived', 'directory', 'explicit', 'no-labels');
  return fc
    .tuple(
      pair,
      naming,
      fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 2, arbitrary: options('idx') }),
    )
    .map(([p, how, opts]) => {
      const images = { name: 'train-images-idx3-ubyte', content: new Uint8Array(p.images) };
      const labels = {
        name: how === 'explicit' ? 'my-labels.bin' : 'train-labels-idx1-ubyte',
        content: new Uint8Array(p.labels),
      };
      return {
        files: how === 'no-labels' ? [images] : [images, labels],
        path: how === 'directory' ? '.' : images.name,
        options: how === 'explicit' ? { ...opts, labelsPath: labels.name } : opts,
      };
    });
}

/** Throws unless `ds` is internally consistent for `opts`. */
function assertConsistent(ds: LocalDataset, opts: LoadOptions): void {
  invariant(Number.isSafeInteger(ds.count) && ds.count >= 1, `count ${ds.count}`);
  invariant(opts.limit === undefined || ds.count <= opts.limit, `count ${ds.count} over limit ${opts.limit}`);
  invariant(
    ds.featureShape.length >= 1 && ds.featureShape.every((d) => Number.isSafeInteger(d) && d >= 1),
    `featureShape [${ds.featureShape}]`,
  );
  invariant(
    ds.x instanceof Float32Array && ds.x.length === ds.count * sizeOf(ds.featureShape),
    `x has ${ds.x.length} values for ${ds.count} × [${ds.featureShape}]`,
  );
  invariant(
    ds.labels instanceof Int32Array && ds.labels.length === ds.count,
    `${ds.labels.length} labels for ${ds.count} examples`,
  );
  // Class numbers: loaders refuse negative labels (a common "unlabelled" marker).
  const negative = ds.labels.findIndex((l) => l < 0);
  invariant(negative < 0, `label ${negative + 1} is ${ds.labels[negative]}`);
  const bad = ds.x.findIndex((v) => !Number.isFinite(v));
  invariant(bad < 0, `x[${bad}] is ${ds.x[bad]}`);
  invariant(typeof ds.source === 'string' && ds.source.length > 0, 'no source');
}

async function writeCase(ctx: DataContext, c: DataCase): Promise<void> {
  await rm(ctx.caseDir, { recursive: true, force: true });
  await mkdir(ctx.caseDir);
  for (const f of c.files) await writeFile(join(ctx.caseDir, f.name), f.content);
}

function resolveOptions(ctx: DataContext, opts: LoadOptions): LoadOptions {
  return opts.labelsPath === undefined ? opts : { ...opts, labelsPath: join(ctx.caseDir, opts.labelsPath) };
}

async function checkLoad(c: DataCase, ctx: DataContext): Promise<LocalDataset | undefined> {
  await writeCase(ctx, c);
  const opts = resolveOptions(ctx, c.options);
  const out = await asyncOutcomeOf(
    () => loadDataset(join(ctx.caseDir, c.path), opts),
    ['LOOM_ERR_DATA', 'LOOM_ERR_INVALID_ARGUMENT'],
  );
  if (!out.ok) return undefined;
  assertConsistent(out.value, opts);
  return out.value;
}

async function setupData(): Promise<DataContext> {
  const dir = makeTempDir('data');
  return { dir, caseDir: join(dir, 'case') };
}

async function teardownData(ctx: DataContext): Promise<void> {
  removeTempDir(ctx.dir);
}

/** Round trip: a table written in `format` loads back with the same float32 values and labels. */
function roundTripCases(): fc.Arbitrary<{ format: DataFormat; table: Table; layout: unknown }> {
  const csv = fc.record({
    format: fc.constant('csv' as const),
    table: table(flatShape()),
    layout: csvLayout(),
  });
  const jsonl = fc.record({
    format: fc.constant('jsonl' as const),
    table: table(
      fc.oneof(
        flatShape(),
        fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })).map(([r, c]) => [r, c]),
      ),
    ),
    layout: fc.record({
      key: fc.constantFrom('x' as const, 'features' as const),
      rows: fc.constant(1),
      blank: fc.boolean(),
    }),
  });
  const idx = fc.record({
    format: fc.constant('idx' as const),
    table: table(
      fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })).map(([r, c]) => [r, c]),
      fc.integer({ min: 0, max: 255 }),
    ).map((t) => ({ ...t, rows: t.rows.map((r) => ({ ...r, label: r.label & 0xff })) })),
    layout: fc.constant(null),
  });
  return fc.oneof(csv, jsonl, idx);
}

async function checkRoundTrip(
  c: { format: DataFormat; table: Table; layout: unknown },
  ctx: DataContext,
): Promise<void> {
  const t = c.table;
  let files: DataFile[];
  let path: string;
  let options: LoadOptions = {};
  if (c.format === 'csv') {
    files = [{ name: 'data.csv', content: csvText(t, c.layout as CsvLayout) }];
    path = 'data.csv';
    options = csvOptions(c.layout as CsvLayout);
  } else if (c.format === 'jsonl') {
    // A 2-D feature shape travels as rows.
    const lines = t.rows.map((r) => {
      const [rows, cols] = t.featureShape.length === 2 ? t.featureShape : [1, r.x.length];
      const x =
        t.featureShape.length === 2
          ? Array.from({ length: rows }, (_, i) => r.x.slice(i * cols, (i + 1) * cols))
          : r.x;
      return JSON.stringify({ [(c.layout as { key: string }).key]: x, label: r.label });
    });
    files = [{ name: 'data.jsonl', content: `${lines.join('\n')}\n` }];
    path = 'data.jsonl';
  } else {
    const [rows, cols] = t.featureShape;
    const px = Uint8Array.from(t.rows.flatMap((r) => r.x));
    files = [
      { name: 'train-images-idx3-ubyte', content: idxFile(0x0803, [t.rows.length, rows, cols], px) },
      {
        name: 'train-labels-idx1-ubyte',
        content: idxFile(0x0801, [t.rows.length], Uint8Array.from(t.rows.map((r) => r.label))),
      },
    ];
    path = 'train-images-idx3-ubyte';
  }
  const ds = await checkLoad({ files, path, options }, ctx);
  invariant(ds, `a valid ${c.format} file did not load`);
  const scale = c.format === 'idx' ? 255 : 1;
  invariant(ds.count === t.rows.length, `loaded ${ds.count} of ${t.rows.length} examples`);
  invariant(
    ds.featureShape.join() === t.featureShape.join(),
    `featureShape [${ds.featureShape}], wrote [${t.featureShape}]`,
  );
  t.rows.forEach((r, i) => {
    invariant(ds.labels[i] === r.label, `example ${i + 1}: label ${ds.labels[i]}, wrote ${r.label}`);
    r.x.forEach((v, j) => {
      const got = ds.x[i * r.x.length + j];
      invariant(Object.is(got, Math.fround(v / scale)), `example ${i + 1} value ${j}: ${got}, wrote ${v}`);
    });
  });
}

export const dataTargets = [
  defineTarget({
    name: 'data.load',
    description:
      'loadDataset on arbitrary and mutated CSV, JSONL and IDX files and odd options: LOOM_ERR_DATA / LOOM_ERR_INVALID_ARGUMENT, or a consistent dataset',
    shortRuns: 300,
    input: () => fc.oneof(csvCases(), jsonlCases(), idxCases()),
    setup: setupData,
    teardown: teardownData,
    check: async (c: DataCase, ctx: DataContext) => {
      await checkLoad(c, ctx);
    },
  }),
  defineTarget({
    name: 'data.round-trip',
    description:
      'a table written as CSV, JSONL or IDX loads back with the same float32 values, labels and shape',
    shortRuns: 200,
    input: roundTripCases,
    setup: setupData,
    teardown: teardownData,
    check: checkRoundTrip,
  }),
];

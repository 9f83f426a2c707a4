// Reads a numeric CSV file: a header row, one label column, every other column a feature.
import { LoomError } from '../../shared/errors/index.ts';
import { Float32Builder } from './builder.ts';
import { isLabel } from './labels.ts';
import { forEachLine } from './lines.ts';
import type { LocalDataset } from './types.ts';

/** Options of `loadCsv`; `loadDataset` fills in the defaults. */
export interface CsvOptions {
  labelColumn: string;
  scale: number;
  limit?: number;
}

/** Quotes are allowed around cells; numeric data never needs commas inside them. */
function cells(line: string): string[] {
  return line.split(',').map((c) => {
    const t = c.trim();
    return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).trim() : t;
  });
}

/**
 * Loads a CSV file. Errors are LOOM_ERR_DATA naming the file and the 1-based row of the file
 * (the header is row 1), e.g. `data.csv row 17: column "x3" is not a number`. Blank lines are
 * skipped.
 */
export async function loadCsv(file: string, opts: CsvOptions): Promise<LocalDataset> {
  let header: string[] | undefined;
  let labelIndex = -1;
  const x = new Float32Builder();
  const labels: number[] = [];
  const fail = (row: number, message: string): never => {
    throw new LoomError('LOOM_ERR_DATA', `${file} row ${row}: ${message}`, { details: { row } });
  };

  await forEachLine(file, (raw, row) => {
    const line = row === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (line.trim() === '') return true;
    if (!header) {
      header = cells(line);
      const seen = new Set<string>();
      for (const name of header) {
        if (name === '') fail(row, 'the header has an empty column name');
        if (seen.has(name)) fail(row, `the header names column "${name}" twice`);
        seen.add(name);
      }
      labelIndex = header.indexOf(opts.labelColumn);
      if (labelIndex < 0) {
        fail(row, `the header has no "${opts.labelColumn}" column (columns: ${header.join(', ')})`);
      }
      if (header.length < 2) fail(row, 'the header needs at least one feature column beside the label');
      return true;
    }
    const values = cells(line);
    if (values.length !== header.length) {
      fail(row, `has ${values.length} columns, the header has ${header.length}`);
    }
    for (let i = 0; i < values.length; i++) {
      const v = values[i] === '' ? Number.NaN : Number(values[i]);
      if (i === labelIndex) {
        if (!isLabel(v)) fail(row, `label column "${header[i]}" is not an integer: "${values[i]}"`);
        labels.push(v);
      } else {
        if (!Number.isFinite(v)) fail(row, `column "${header[i]}" is not a number: "${values[i]}"`);
        if (!Number.isFinite(Math.fround(v / opts.scale))) {
          fail(row, `column "${header[i]}" is outside the float32 range: "${values[i]}"`);
        }
        x.push(v / opts.scale);
      }
    }
    return opts.limit === undefined || labels.length < opts.limit;
  });

  if (!header) throw new LoomError('LOOM_ERR_DATA', `${file} is empty (a header row is required)`);
  if (labels.length === 0) throw new LoomError('LOOM_ERR_DATA', `${file} has a header but no data rows`);
  return {
    x: x.toArray(),
    labels: Int32Array.from(labels),
    count: labels.length,
    featureShape: [header.length - 1],
    source: file,
  };
}

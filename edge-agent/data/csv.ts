// Reads a numeric CSV file: a header row, one label column, every other column a feature.
import { LoomError } from '../../shared/errors/index.ts';
import { Float32Builder } from './builder.ts';
import { labelProblem } from './labels.ts';
import { forEachLine } from './lines.ts';
import type { LocalDataset } from './types.ts';

/** Options of `loadCsv`; `loadDataset` fills in the defaults. */
export interface CsvOptions {
  labelColumn: string;
  scale: number;
  limit?: number;
  /** One character. Default `,`. */
  separator?: string;
}

/** Separators people's CSV files use; a file that splits better on another one is named as such. */
const COMMON_SEPARATORS = [',', ';', '\t', '|'];

/** How many header names an error lists before it says how many more there are. */
const MAX_NAMES_SHOWN = 8;

/** Quotes are allowed around cells; numeric data never needs separators inside them. */
function cells(line: string, separator: string): string[] {
  return line.split(separator).map((c) => {
    const t = c.trim();
    return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).trim() : t;
  });
}

/** A separator as a person reads it: `";"`, or `tab`. */
function showSeparator(sep: string): string {
  return sep === '\t' ? 'tab' : `"${sep}"`;
}

/** A separator as it is typed after --csv-separator in a shell. */
function separatorFlag(sep: string): string {
  return sep === '\t' ? 'tab' : `'${sep}'`;
}

/**
 * Another common separator that splits `line` into more columns than `current` does (into
 * exactly `wantColumns` when given), the one giving the most columns; undefined if none does.
 */
function likelySeparator(line: string, current: string, wantColumns?: number): string | undefined {
  let best: string | undefined;
  let bestCount = cells(line, current).length;
  for (const sep of COMMON_SEPARATORS) {
    if (sep === current) continue;
    const n = cells(line, sep).length;
    if (n > bestCount && (wantColumns === undefined || n === wantColumns)) {
      best = sep;
      bestCount = n;
    }
  }
  return best;
}

function listNames(names: string[]): string {
  return names.length <= MAX_NAMES_SHOWN
    ? names.join(', ')
    : `${names.slice(0, MAX_NAMES_SHOWN).join(', ')}, ... (${names.length} in all)`;
}

/**
 * Loads a CSV file. Errors are LOOM_ERR_DATA naming the file and the 1-based row of the file
 * (the header is row 1), e.g. `data.csv row 17: column "x3" is not a number`. A header or row
 * that looks separated by another common separator (`;`, tab, `|`, `,`) says which. Labels must be
 * class numbers (integers from 0). Blank lines are skipped.
 * @param opts.separator default `,`
 */
export async function loadCsv(file: string, opts: CsvOptions): Promise<LocalDataset> {
  const separator = opts.separator ?? ',';
  let header: string[] | undefined;
  let labelIndex = -1;
  const x = new Float32Builder();
  const labels: number[] = [];
  const fail = (row: number, message: string): never => {
    throw new LoomError('LOOM_ERR_DATA', `${file} row ${row}: ${message}`, { details: { row } });
  };
  const wrongSeparator = (row: number, what: string, guess: string, columns: number): never =>
    fail(
      row,
      `${what} looks separated by ${showSeparator(guess)}, not ${showSeparator(separator)} ` +
        `(${columns} columns that way); pass --csv-separator ${separatorFlag(guess)} ` +
        `(load option separator: ${JSON.stringify(guess)})`,
    );

  await forEachLine(file, (raw, row) => {
    const line = row === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (line.trim() === '') return true;
    if (!header) {
      header = cells(line, separator);
      labelIndex = header.indexOf(opts.labelColumn);
      if (labelIndex < 0 || header.length < 2) {
        // Checked first: a file split on the wrong character has one huge column name.
        const guess = likelySeparator(line, separator);
        if (guess) wrongSeparator(row, 'the header', guess, cells(line, guess).length);
      }
      const seen = new Set<string>();
      for (const name of header) {
        if (name === '') fail(row, 'the header has an empty column name');
        if (seen.has(name)) fail(row, `the header names column "${name}" twice`);
        seen.add(name);
      }
      if (labelIndex < 0) {
        fail(row, `the header has no "${opts.labelColumn}" column (columns: ${listNames(header)})`);
      }
      if (header.length < 2) fail(row, 'the header needs at least one feature column beside the label');
      return true;
    }
    const values = cells(line, separator);
    if (values.length !== header.length) {
      const guess = likelySeparator(line, separator, header.length);
      if (guess) wrongSeparator(row, 'this row', guess, header.length);
      fail(row, `has ${values.length} columns, the header has ${header.length}`);
    }
    for (let i = 0; i < values.length; i++) {
      const v = values[i] === '' ? Number.NaN : Number(values[i]);
      if (i === labelIndex) {
        const problem = Number.isNaN(v) ? 'is not an integer' : labelProblem(v);
        if (problem) fail(row, `label column "${header[i]}" ${problem}: "${values[i]}"`);
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
    files: [file],
  };
}

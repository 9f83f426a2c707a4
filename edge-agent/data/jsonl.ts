// Reads JSON Lines: one `{"x": number[] | number[][], "label": int}` object per line.
import { LoomError } from '../../shared/errors/index.ts';
import { Float32Builder } from './builder.ts';
import { labelProblem } from './labels.ts';
import { forEachLine } from './lines.ts';
import type { LocalDataset } from './types.ts';

/** Options of `loadJsonl`; `loadDataset` fills in the defaults. */
export interface JsonlOptions {
  scale: number;
  limit?: number;
}

/** Shape of a 1-D or rectangular 2-D array of finite numbers, or a reason it is not one. */
function shapeOf(x: unknown): number[] | string {
  if (!Array.isArray(x) || x.length === 0) return '"x" must be a non-empty array of numbers';
  if (Array.isArray(x[0])) {
    const cols = (x[0] as unknown[]).length;
    if (cols === 0) return '"x" has an empty row';
    for (let r = 0; r < x.length; r++) {
      const row = x[r];
      if (!Array.isArray(row) || row.length !== cols)
        return `"x" row ${r} is not an array of ${cols} numbers`;
      for (let c = 0; c < cols; c++) {
        if (typeof row[c] !== 'number' || !Number.isFinite(row[c])) return `"x"[${r}][${c}] is not a number`;
      }
    }
    return [x.length, cols];
  }
  for (let i = 0; i < x.length; i++) {
    if (typeof x[i] !== 'number' || !Number.isFinite(x[i])) return `"x"[${i}] is not a number`;
  }
  return [x.length];
}

/**
 * Loads a JSONL file (`"features"` is accepted for `"x"`). Every line must have the shape of
 * the first, and labels must be class numbers (integers from 0). Errors are LOOM_ERR_DATA naming the file and 1-based line. Blank lines are skipped.
 */
export async function loadJsonl(file: string, opts: JsonlOptions): Promise<LocalDataset> {
  let featureShape: number[] | undefined;
  const x = new Float32Builder();
  const labels: number[] = [];
  const fail = (line: number, message: string): never => {
    throw new LoomError('LOOM_ERR_DATA', `${file} line ${line}: ${message}`, { details: { line } });
  };

  await forEachLine(file, (text, lineNo) => {
    if (text.trim() === '') return true;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (err) {
      fail(lineNo, `is not valid JSON (${(err as Error).message})`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      fail(lineNo, 'must be an object like {"x": [...], "label": 3}');
    }
    const rec = obj as Record<string, unknown>;
    const features = rec.x ?? rec.features;
    if (features === undefined) fail(lineNo, 'has no "x" (or "features")');
    const shape = shapeOf(features);
    if (typeof shape === 'string') fail(lineNo, shape);
    const s = shape as number[];
    if (!featureShape) featureShape = s;
    else if (s.length !== featureShape.length || s.some((d, i) => d !== featureShape?.[i])) {
      fail(lineNo, `"x" has shape [${s}], earlier lines have [${featureShape}]`);
    }
    if (typeof rec.label !== 'number' || !Number.isInteger(rec.label)) {
      fail(lineNo, `"label" must be an integer, got ${JSON.stringify(rec.label) ?? 'nothing'}`);
    }
    const problem = labelProblem(rec.label as number);
    if (problem) fail(lineNo, `"label" ${rec.label} ${problem}`);
    for (const v of (features as unknown[]).flat() as number[]) {
      if (!Number.isFinite(Math.fround(v / opts.scale)))
        fail(lineNo, `"x" holds ${v}, outside the float32 range`);
      x.push(v / opts.scale);
    }
    labels.push(rec.label as number);
    return opts.limit === undefined || labels.length < opts.limit;
  });

  if (!featureShape) throw new LoomError('LOOM_ERR_DATA', `${file} has no examples`);
  return {
    x: x.toArray(),
    labels: Int32Array.from(labels),
    count: labels.length,
    featureShape,
    source: file,
    files: [file],
  };
}

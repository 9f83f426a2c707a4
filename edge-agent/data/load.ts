// Entry point for local data: checks options, picks the format and hands over to its reader.
import { extname } from 'node:path';
import { LoomError } from '../../shared/errors/index.ts';
import { loadCsv } from './csv.ts';
import { loadJsonl } from './jsonl.ts';
import { loadIdx } from './load-idx.ts';
import type { DataFormat, LoadOptions, LocalDataset } from './types.ts';

const FORMATS: readonly DataFormat[] = ['idx', 'csv', 'jsonl'];

function badOption(message: string): never {
  throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', message);
}

/** The format a path's extension implies: `.csv`, `.jsonl`/`.ndjson`, else idx. */
export function inferFormat(path: string): DataFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  return 'idx';
}

/**
 * Loads local training data from `path` (an IDX images file or a directory of IDX files, a CSV
 * file or a JSONL file). Defaults: format from the extension, CSV label column `'label'` and
 * separator `','`, IDX labels file derived from the images path, scale 255 for IDX and 1
 * otherwise, no limit. Labels must be class numbers (integers from 0); whether they fit the model
 * is `checkDataset`'s business.
 * Unreadable or malformed data throws LOOM_ERR_DATA naming the file (and row or line);
 * bad options throw LOOM_ERR_INVALID_ARGUMENT.
 */
export async function loadDataset(path: string, opts: LoadOptions = {}): Promise<LocalDataset> {
  if (typeof path !== 'string' || path === '') badOption('a data path is required');
  const format = opts.format ?? inferFormat(path);
  if (!FORMATS.includes(format)) badOption(`format must be one of ${FORMATS.join(', ')}`);
  const { limit } = opts;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit <= 0)) {
    badOption('limit must be a positive integer');
  }
  const scale = opts.scale ?? (format === 'idx' ? 255 : 1);
  if (!Number.isFinite(scale) || scale <= 0) badOption('scale must be a positive number');
  switch (format) {
    case 'csv': {
      const labelColumn = opts.labelColumn ?? 'label';
      if (labelColumn.trim() === '') badOption('labelColumn must not be empty');
      const separator = opts.separator ?? ',';
      if ([...separator].length !== 1 || /[\d.+\-eE"'\r\n]/.test(separator)) {
        badOption(
          `separator must be one character that cannot appear in a number or a quoted cell, got ${JSON.stringify(separator)}`,
        );
      }
      return loadCsv(path, { labelColumn, scale, limit, separator });
    }
    case 'jsonl':
      return loadJsonl(path, { scale, limit });
    case 'idx':
      return loadIdx(path, { labelsPath: opts.labelsPath, scale, limit });
  }
}

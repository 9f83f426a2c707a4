// The shape of local training data once loaded, whatever file format it came from.

/** File formats `loadDataset` reads. */
export type DataFormat = 'idx' | 'csv' | 'jsonl';

/** Examples held in memory, row-major: example `i` is `x[i * size .. (i + 1) * size)`. */
export interface LocalDataset {
  /** Features of every example back to back; `size` is the product of `featureShape`. */
  x: Float32Array;
  /** One integer class label per example. */
  labels: Int32Array;
  /** Number of examples. */
  count: number;
  /** Shape of one example, without the batch dimension (e.g. `[28, 28]` for MNIST IDX). */
  featureShape: number[];
  /** The path the data was read from, used in error messages. */
  source: string;
  /** Every file the examples were read from (for the dataset fingerprint). Absent for data made in memory. */
  files?: string[];
}

/** Options of `loadDataset`. */
export interface LoadOptions {
  /** Default: inferred from the extension: `.csv` → csv, `.jsonl`/`.ndjson` → jsonl, else idx. */
  format?: DataFormat;
  /** CSV only: the name of the label column. Default `'label'`. */
  labelColumn?: string;
  /**
   * CSV only: the column separator, one character (not a quote, a line break, or a character
   * of numbers). Default `','`. A file that looks separated by another of `,` `;` tab `|` is
   * refused with an error naming that separator.
   */
  separator?: string;
  /**
   * IDX only: the labels file. Default: for a directory holding exactly one `*images*` and one
   * `*labels*` IDX file, those; for a path containing `images-idx3`, the same path with
   * `labels-idx1` in its place.
   */
  labelsPath?: string;
  /** Every feature value is divided by this. Default 255 for IDX (uint8 pixels), 1 otherwise. */
  scale?: number;
  /** Read at most this many examples (from the start). Default: all. */
  limit?: number;
}

// What counts as a class label in a data file: a class number 0, 1, 2, ... that fits in an
// Int32Array. Whether it is below the model's number of classes is checked against the model.

const INT32_MAX = 2 ** 31 - 1;

/** True when `value` can be stored as a class label. Range against the model is checked later. */
export function isLabel(value: number): boolean {
  return labelProblem(value) === undefined;
}

/** Why `value` is not a class label (`is not an integer`, `is negative ...`), or undefined when it is one. */
export function labelProblem(value: number): string | undefined {
  if (!Number.isInteger(value)) return 'is not an integer';
  // Negative numbers are a common "unknown" or "unlabelled" marker, never a class index.
  if (value < 0) return 'is negative; labels are class numbers 0, 1, 2, ...';
  if (value > INT32_MAX) return 'is too large for a class number';
  return undefined;
}

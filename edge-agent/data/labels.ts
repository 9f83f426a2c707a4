// What counts as a class label in a text file: an integer that fits in an Int32Array.

const INT32_MAX = 2 ** 31 - 1;

/** True when `value` can be stored as a class label. Range against the model is checked later. */
export function isLabel(value: number): boolean {
  return Number.isInteger(value) && value >= -INT32_MAX - 1 && value <= INT32_MAX;
}

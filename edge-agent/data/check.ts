// Checks loaded data against the model it will train before any training starts.
import { LoomError } from '../../shared/errors/index.ts';
import { sizeOf } from '../../shared/tensors/index.ts';
import type { LocalDataset } from './types.ts';

/**
 * Throws LOOM_ERR_DATA, naming the source and the first bad example (1-based), when an
 * example's feature count differs from `sizeOf(inputShape)` or a label is outside
 * `[0, classes)`. The flat layout allows any featureShape with the right element count, so
 * `[28, 28]` IDX images feed a `[784]` model.
 */
export function checkDatasetShape(ds: LocalDataset, inputShape: number[], classes: number): void {
  const want = sizeOf(inputShape);
  const have = sizeOf(ds.featureShape);
  if (have !== want) {
    throw new LoomError(
      'LOOM_ERR_DATA',
      `${ds.source} example 1: has ${have} features (shape [${ds.featureShape}]), ` +
        `the model takes ${want} (input shape [${inputShape}])`,
      { details: { example: 1 } },
    );
  }
  if (ds.count <= 0 || ds.x.length !== ds.count * have || ds.labels.length !== ds.count) {
    throw new LoomError(
      'LOOM_ERR_DATA',
      `${ds.source}: holds ${ds.x.length} values and ${ds.labels.length} labels, ` +
        `not ${ds.count} examples of ${have} features`,
    );
  }
  for (let i = 0; i < ds.count; i++) {
    const label = ds.labels[i];
    if (label < 0 || label >= classes) {
      throw new LoomError(
        'LOOM_ERR_DATA',
        `${ds.source} example ${i + 1}: label ${label} is outside [0, ${classes})`,
        { details: { example: i + 1 } },
      );
    }
  }
}

// A dataset summary as an agent sends it in its hello, for tests that speak the protocol by hand.
import type { DatasetSummary } from '../../shared/protocol/index.ts';

/** The summary of `examples` MNIST-like examples of 784 features in [0, 1] (or up to `max`). */
export function datasetSummary(examples: number, max = 1): DatasetSummary {
  return {
    examples,
    featureShape: [784],
    labelCounts: Array.from(
      { length: 10 },
      (_, i) => Math.floor(examples / 10) + (i < examples % 10 ? 1 : 0),
    ),
    featureMin: new Array(784).fill(0),
    featureMax: new Array(784).fill(max),
    featureMean: new Array(784).fill(max * 0.13),
    featureGroup: 1,
  };
}

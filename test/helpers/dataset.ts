// A dataset summary as an agent sends it in its hello, for tests that speak the protocol by hand.
import type { DatasetSummary } from '../../shared/protocol/index.ts';

/** The summary of `examples` MNIST-like examples of 784 features in [0, max] (default 1). */
export function datasetSummary(examples: number, max = 1): DatasetSummary {
  return {
    examples,
    featureShape: [784],
    features: 784,
    labels: Array.from({ length: 10 }, (_, i) => ({
      value: i,
      count: Math.floor(examples / 10) + (i < examples % 10 ? 1 : 0),
    })),
    otherLabels: { distinct: 0, examples: 0 },
    nonFiniteValues: 0,
    featureStats: {
      groupSize: 1,
      groups: 784,
      min: new Array(784).fill(0),
      max: new Array(784).fill(max),
      mean: new Array(784).fill(max * 0.13),
    },
  };
}

// What each emulated agent of the fleet bench declares and sends, chosen so the coordinator's
// aggregate can be checked exactly. Agent i declares EXAMPLES(i) examples and sends, in every
// round, the update whose element j is ±MAGNITUDE with a sign from a hash of (i, j): every
// update has the same L2 norm (so the round's clipping scales none of them) and its own pattern
// (so a lost or doubled one shows). The float32 running sum of weight × update is then exact:
// each term is an integer multiple of MAGNITUDE (weights are integers) and the sum stays below
// 2^24 multiples of it for up to ~23,000 agents, so the only rounding left is the division
// by the total weight and the addition to the global weights.
import type { WeightSpec, WeightTensor } from '../shared/tensors/index.ts';

/** Every update element is ±2^-10 (about 0.001). */
export const MAGNITUDE = 2 ** -10;

/** Examples agent i declares in its hello and reports in every result: 500…700. */
export function examplesOf(agentIndex: number): number {
  return 500 + 50 * (agentIndex % 5);
}

/** 1 or −1: the sign of element `j` of agent `agentIndex`'s update (a 32-bit integer hash). */
export function signOf(agentIndex: number, j: number): number {
  let h = Math.imul(agentIndex ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(j + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h & 1 ? 1 : -1;
}

/** Agent `agentIndex`'s update for weights of these specs (elements numbered across tensors in order). */
export function updateOf(agentIndex: number, specs: readonly WeightSpec[]): WeightTensor[] {
  let j = 0;
  return specs.map((s) => {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    for (let k = 0; k < data.length; k++) data[k] = MAGNITUDE * signOf(agentIndex, j++);
    return { name: s.name, shape: [...s.shape], dtype: 'float32', data };
  });
}

/** L2 norm of every agent's update of `params` elements. */
export function updateNorm(params: number): number {
  return MAGNITUDE * Math.sqrt(params);
}

/**
 * Element by element, the weighted mean Σ weight × update / Σ weight of the given agents'
 * updates, in float64: what a round folding exactly these updates averages to.
 */
export function weightedMean(
  contributors: readonly { agentIndex: number; weight: number }[],
  params: number,
): Float64Array {
  const sum = new Float64Array(params);
  let total = 0;
  for (const { agentIndex, weight } of contributors) {
    total += weight;
    for (let j = 0; j < params; j++) sum[j] += weight * signOf(agentIndex, j);
  }
  for (let j = 0; j < params; j++) sum[j] = total > 0 ? (sum[j] * MAGNITUDE) / total : 0;
  return sum;
}

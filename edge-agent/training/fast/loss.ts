// Softmax and categorical cross-entropy on the logits of a batch, with the gradient exactly as
// TensorFlow.js derives it (normalise, clip to [ε, 1 − ε], log), so a saturated prediction gets
// the same zero gradient on both paths.

/** TensorFlow.js's float32 epsilon: the clip bound of its cross-entropy. */
const EPSILON = 1e-7;

export interface BatchLoss {
  /** Sum over the batch of each example's cross-entropy (the mean is this over the rows). */
  lossSum: number;
  /** Examples whose most probable class is the label (first maximum, as argMax). */
  correct: number;
}

/**
 * For rows `i < rows` of `logits` (row stride `stride`, `classes` used columns): writes
 * `dLoss/dLogits` of the mean loss over `batchRows` rows (these and the batch's other rows) into
 * `grad` (same layout) and returns these rows' loss sum and correct count. `labels[i]` is row i's class.
 */
export function softmaxCrossEntropy(
  logits: Float32Array,
  grad: Float32Array,
  labels: ArrayLike<number>,
  rows: number,
  batchRows: number,
  classes: number,
  stride: number,
): BatchLoss {
  const p = new Float64Array(classes);
  const g = new Float64Array(classes);
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < rows; i++) {
    const at = i * stride;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < classes; j++) max = Math.max(max, logits[at + j]);
    let sum = 0;
    for (let j = 0; j < classes; j++) {
      p[j] = Math.exp(logits[at + j] - max);
      sum += p[j];
    }
    let best = 0;
    let total = 0;
    for (let j = 0; j < classes; j++) {
      p[j] = Math.fround(p[j] / sum);
      total += p[j];
      if (p[j] > p[best]) best = j;
    }
    const t = labels[i];
    if (best === t) correct++;
    // q = p / Σp, c = clip(q); loss = −log c[t]; only the label's entry has a gradient.
    const q = p[t] / total;
    const c = Math.min(Math.max(q, EPSILON), 1 - EPSILON);
    lossSum -= Math.log(c);
    const gq = q >= EPSILON && q <= 1 - EPSILON ? -1 / (c * batchRows) : 0;
    // dL/dp_j = (δ_jt·gq − gq·q) / Σp, then through the softmax: dz = p ⊙ (g − Σ g ⊙ p).
    let dot = 0;
    for (let j = 0; j < classes; j++) {
      const gp = ((j === t ? gq : 0) - gq * q) / total;
      g[j] = gp;
      dot += gp * p[j];
    }
    for (let j = 0; j < classes; j++) grad[at + j] = p[j] * (g[j] - dot);
  }
  return { lossSum, correct };
}

// Checks of what an agent reports about a version on its hold-out data, and the example-weighted
// aggregate of the reports that pass. An enrolled agent may lie: a report that does not add up is
// that agent's failure, never the evaluation's.
import { LoomError } from '../../shared/errors/index.ts';
import { holdoutCount } from '../../shared/protocol/index.ts';
import type { EvaluateOutcome } from './agent-pool.ts';
import { median } from './contribution.ts';

/** What a report is checked against. */
export interface EvaluationBounds {
  /** Classes of the model: the confusion matrix is classes × classes. */
  classes: number;
  /** Examples the agent declared for its whole dataset when it connected (undefined: not known). */
  declaredExamples?: number;
  /** The hold-out share the task named. */
  holdoutFraction: number;
}

/** A checked report: accuracy is recomputed from the confusion matrix. */
export interface CheckedEvaluation {
  numExamples: number;
  loss: number;
  accuracy: number;
  confusion: number[][];
}

/** Accuracy may differ from the confusion matrix's by float rounding only. */
const ACCURACY_TOLERANCE = 1e-6;

function rejected(message: string, reason: string): never {
  throw new LoomError('LOOM_ERR_UPDATE_REJECTED', message, { details: { reason } });
}

/**
 * Throws LOOM_ERR_UPDATE_REJECTED (with `details.reason`) unless the report is consistent: at
 * least one example and no more than the agent's hold-out share of what it declared at hello, a
 * finite non-negative loss, a classes × classes matrix of non-negative integers summing to the
 * example count, and an accuracy equal to its diagonal over that count.
 */
export function checkEvaluation(outcome: EvaluateOutcome, bounds: EvaluationBounds): CheckedEvaluation {
  const { numExamples, loss, accuracy, confusion } = outcome;
  if (!Number.isSafeInteger(numExamples) || numExamples < 1) {
    rejected('the evaluation reports no hold-out examples', 'examples');
  }
  if (bounds.declaredExamples !== undefined) {
    const most = holdoutCount(bounds.declaredExamples, bounds.holdoutFraction);
    if (numExamples > most) {
      rejected(
        `the evaluation claims ${numExamples} hold-out examples; the agent declared ${bounds.declaredExamples} examples when it connected, so a hold-out share of ${bounds.holdoutFraction} is at most ${most}`,
        'examples',
      );
    }
  }
  if (!Number.isFinite(loss) || loss < 0)
    rejected(`the evaluation's loss ${loss} is not a finite number ≥ 0`, 'loss');
  if (!Array.isArray(confusion) || confusion.length !== bounds.classes) {
    rejected(
      `the confusion matrix has ${Array.isArray(confusion) ? confusion.length : 'no'} rows; the model has ${bounds.classes} classes`,
      'confusion',
    );
  }
  let total = 0;
  let diagonal = 0;
  confusion.forEach((row, t) => {
    if (!Array.isArray(row) || row.length !== bounds.classes) {
      rejected(`row ${t} of the confusion matrix does not have ${bounds.classes} counts`, 'confusion');
    }
    row.forEach((n, p) => {
      if (!Number.isSafeInteger(n) || n < 0) {
        rejected(`confusion[${t}][${p}] is ${n}, not a non-negative integer`, 'confusion');
      }
      total += n;
      if (t === p) diagonal += n;
    });
  });
  if (total !== numExamples) {
    rejected(
      `the confusion matrix counts ${total} examples, the evaluation claims ${numExamples}`,
      'confusion',
    );
  }
  const recomputed = diagonal / numExamples;
  if (!(Math.abs(accuracy - recomputed) <= ACCURACY_TOLERANCE)) {
    rejected(
      `the reported accuracy ${accuracy} is not the confusion matrix's ${recomputed.toFixed(6)}`,
      'accuracy',
    );
  }
  return { numExamples, loss, accuracy: recomputed, confusion: confusion.map((row) => [...row]) };
}

/**
 * Default of an evaluation's weight cap: one site weighs at most 1.5× the lower median of the
 * hold-out sizes the asked sites' declared datasets imply (as a training round caps its weights).
 */
export const EVALUATION_WEIGHT_CAP_RATIO = 1.5;

/** The weight of one site's report in the aggregate: its example count, capped. */
export function evaluationWeight(numExamples: number, cap: number): number {
  return Math.min(numExamples, cap);
}

/** The weighted figures of several sites' reports, and their median. */
export interface EvaluationAggregate {
  /** Hold-out examples of all reports (uncapped). */
  numExamples: number;
  /** Σ weight × loss / Σ weight, each site's weight its example count capped at `weightCap`. */
  loss: number;
  /** Σ weight × accuracy / Σ weight: with no site above the cap, the summed matrix's diagonal over its total. */
  accuracy: number;
  /** Element-wise sum of the sites' matrices (raw counts, uncapped). */
  confusion: number[][];
  /** The largest weight one site could have; absent when no cap applied. */
  weightCap?: number;
  /** Per metric, the median over sites, each site counting once: what one site cannot drag (n ≥ 3). */
  median: { loss: number; accuracy: number };
  /** Sites aggregated. */
  sites: number;
}

/**
 * Aggregates checked reports of one model (all classes × classes); undefined for none. Each site
 * weighs its example count, at most `weightCap` (default: no cap).
 */
export function aggregateEvaluations(
  reports: readonly CheckedEvaluation[],
  weightCap = Number.POSITIVE_INFINITY,
): EvaluationAggregate | undefined {
  if (reports.length === 0) return undefined;
  const classes = reports[0].confusion.length;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let numExamples = 0;
  let weights = 0;
  let lossSum = 0;
  let correctSum = 0;
  for (const r of reports) {
    const w = evaluationWeight(r.numExamples, weightCap);
    numExamples += r.numExamples;
    weights += w;
    lossSum += r.loss * w;
    r.confusion.forEach((row, t) => {
      row.forEach((n, p) => {
        confusion[t][p] += n;
      });
    });
    // The diagonal over the example count, scaled to the weight: exact when nothing is capped.
    correctSum += (r.confusion.reduce((n, row, i) => n + row[i], 0) / r.numExamples) * w;
  }
  const capped = reports.some((r) => r.numExamples > weightCap);
  const correct = confusion.reduce((n, row, i) => n + row[i], 0);
  return {
    numExamples,
    loss: lossSum / weights,
    accuracy: capped ? correctSum / weights : correct / numExamples,
    confusion,
    ...(Number.isFinite(weightCap) ? { weightCap } : {}),
    median: { loss: median(reports.map((r) => r.loss)), accuracy: median(reports.map((r) => r.accuracy)) },
    sites: reports.length,
  };
}

// Checks of what an agent reports about a version on its hold-out data, and the example-weighted
// aggregate of the reports that pass. An enrolled agent may lie: a report that does not add up is
// that agent's failure, never the evaluation's.
import { LoomError } from '../../shared/errors/index.ts';
import { holdoutCount } from '../../shared/protocol/index.ts';
import type { EvaluateOutcome } from './agent-pool.ts';

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

/** The example-weighted figures of several sites' reports. */
export interface EvaluationAggregate {
  numExamples: number;
  /** Σ examples × loss / Σ examples. */
  loss: number;
  /** Σ correct / Σ examples (the summed matrix's diagonal over its total). */
  accuracy: number;
  /** Element-wise sum of the sites' matrices. */
  confusion: number[][];
}

/** Aggregates checked reports of one model (all classes × classes); undefined for none. */
export function aggregateEvaluations(reports: readonly CheckedEvaluation[]): EvaluationAggregate | undefined {
  if (reports.length === 0) return undefined;
  const classes = reports[0].confusion.length;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let numExamples = 0;
  let lossSum = 0;
  for (const r of reports) {
    numExamples += r.numExamples;
    lossSum += r.loss * r.numExamples;
    r.confusion.forEach((row, t) => {
      row.forEach((n, p) => {
        confusion[t][p] += n;
      });
    });
  }
  const correct = confusion.reduce((n, row, i) => n + row[i], 0);
  return { numExamples, loss: lossSum / numExamples, accuracy: correct / numExamples, confusion };
}

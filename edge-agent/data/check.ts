// Checks loaded data against the model it will train before any training starts, reporting
// every problem at once so a site fixes its data in one go rather than one error per attempt.
import { LoomError } from '../../shared/errors/index.ts';
import { sizeOf } from '../../shared/tensors/index.ts';
import type { LocalDataset } from './types.ts';

/** How many example numbers and label values a problem lists; the counts say how many in all. */
const MAX_LISTED = 5;
const MAX_VALUES_LISTED = 10;

/** One thing wrong with a dataset for a model. Plain data: it can travel in error details. */
export type DataProblem =
  | { kind: 'no-examples'; message: string }
  | {
      kind: 'feature-count';
      message: string;
      /** Features per example in the data, and what the model takes. */
      have: number;
      want: number;
      featureShape: number[];
      inputShape: number[];
    }
  | { kind: 'size-mismatch'; message: string; values: number; labels: number; count: number }
  | {
      kind: 'labels-out-of-range';
      message: string;
      classes: number;
      /** Examples whose label is outside [0, classes). */
      count: number;
      /** The distinct bad values, smallest first (at most 10). */
      values: number[];
      /** 1-based numbers of the first bad examples (at most 5). */
      examples: number[];
    }
  | {
      kind: 'non-finite-features';
      message: string;
      /** Feature values that are NaN or ±Infinity. */
      count: number;
      /** 1-based numbers of the first examples holding one (at most 5). */
      examples: number[];
    };

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function listed(all: number, shown: number[]): string {
  return `${shown.join(', ')}${all > shown.length ? ', ...' : ''}`;
}

/**
 * Every problem that stops `ds` from training a model taking `inputShape` with `classes`
 * classes, in a fixed order: no examples, a feature count that differs from the model's input
 * (both counts given), buffers that disagree with `count`, labels outside `[0, classes)` (how
 * many, which values, the first example numbers), feature values that are not finite. Empty
 * when the data fits. The flat layout allows any featureShape with the right element count, so
 * `[28, 28]` IDX images feed a `[784]` model. Throws TypeError on arguments of the wrong type.
 */
export function checkDataset(ds: LocalDataset, inputShape: number[], classes: number): DataProblem[] {
  if (!ds || !(ds.x instanceof Float32Array) || !(ds.labels instanceof Int32Array)) {
    throw new TypeError('checkDataset needs a LocalDataset');
  }
  if (!Array.isArray(inputShape) || !Number.isSafeInteger(classes) || classes < 1) {
    throw new TypeError('checkDataset needs an input shape array and a positive number of classes');
  }
  const problems: DataProblem[] = [];
  if (ds.count <= 0) problems.push({ kind: 'no-examples', message: 'holds no examples' });

  const want = sizeOf(inputShape);
  const have = sizeOf(ds.featureShape);
  if (have !== want) {
    const hint =
      have === want + 1
        ? ' (one too many: is the label column read as a feature? see --label-column)'
        : have === want - 1
          ? ' (one short: is a feature column missing, or taken as the label?)'
          : '';
    problems.push({
      kind: 'feature-count',
      message:
        `each example has ${have} features (shape [${ds.featureShape}]), the model takes ${want} ` +
        `(input shape [${inputShape}])${hint}`,
      have,
      want,
      featureShape: [...ds.featureShape],
      inputShape: [...inputShape],
    });
  }
  if (ds.count > 0 && (ds.x.length !== ds.count * have || ds.labels.length !== ds.count)) {
    problems.push({
      kind: 'size-mismatch',
      message: `holds ${ds.x.length} values and ${ds.labels.length} labels, not ${ds.count} examples of ${have} features`,
      values: ds.x.length,
      labels: ds.labels.length,
      count: ds.count,
    });
  }

  let badLabels = 0;
  const badValues = new Set<number>();
  const badExamples: number[] = [];
  let maxLabel = Number.NEGATIVE_INFINITY;
  let minLabel = Number.POSITIVE_INFINITY;
  const labelled = Math.min(ds.count, ds.labels.length);
  for (let i = 0; i < labelled; i++) {
    const label = ds.labels[i];
    if (label > maxLabel) maxLabel = label;
    if (label < minLabel) minLabel = label;
    if (label >= 0 && label < classes) continue;
    badLabels++;
    if (badValues.size < 1000) badValues.add(label);
    if (badExamples.length < MAX_LISTED) badExamples.push(i + 1);
  }
  if (badLabels > 0) {
    const values = [...badValues].sort((a, b) => a - b).slice(0, MAX_VALUES_LISTED);
    // Labels 1..classes instead of 0..classes-1 is the usual slip of a site that exported them.
    const oneBased = minLabel === 1 && maxLabel === classes ? '; they look numbered from 1: subtract 1' : '';
    problems.push({
      kind: 'labels-out-of-range',
      message:
        `${plural(badLabels, 'example has a label', 'examples have labels')} outside [0, ${classes}): ` +
        `${badValues.size === 1 ? 'value' : 'values'} ${listed(badValues.size, values)} ` +
        `(${badExamples.length === 1 ? 'example' : 'examples'} ${listed(badLabels, badExamples)})${oneBased}`,
      classes,
      count: badLabels,
      values,
      examples: badExamples,
    });
  }

  let nonFinite = 0;
  const nonFiniteExamples: number[] = [];
  const size = have > 0 ? have : 1;
  for (let k = 0; k < ds.x.length; k++) {
    if (Number.isFinite(ds.x[k])) continue;
    nonFinite++;
    const example = Math.floor(k / size) + 1;
    if (nonFiniteExamples.at(-1) !== example && nonFiniteExamples.length < MAX_LISTED) {
      nonFiniteExamples.push(example);
    }
  }
  if (nonFinite > 0) {
    problems.push({
      kind: 'non-finite-features',
      message:
        `${plural(nonFinite, 'feature value is', 'feature values are')} not a finite number ` +
        `(NaN or Infinity), in examples ${listed(nonFinite, nonFiniteExamples)}`,
      count: nonFinite,
      examples: nonFiniteExamples,
    });
  }
  return problems;
}

/**
 * One LOOM_ERR_DATA error for `problems` found in the data read from `source`: a single problem
 * reads `data.csv: <problem>`, several read `data.csv: 3 problems: (1) ...; (2) ...; (3) ...`.
 * `details` holds `{source, problems}` with every problem's fields. Throws TypeError for an
 * empty list: there is nothing to report.
 */
export function dataProblemsError(source: string, problems: DataProblem[]): LoomError {
  if (problems.length === 0) throw new TypeError('dataProblemsError needs at least one problem');
  const text =
    problems.length === 1
      ? problems[0].message
      : `${problems.length} problems: ${problems.map((p, i) => `(${i + 1}) ${p.message}`).join('; ')}`;
  return new LoomError('LOOM_ERR_DATA', `${source}: ${text}`, {
    details: { source, problems: problems.map((p) => ({ ...p })) },
  });
}

/**
 * Throws `dataProblemsError` with every problem `checkDataset` finds, if it finds any.
 */
export function assertDatasetFits(ds: LocalDataset, inputShape: number[], classes: number): void {
  const problems = checkDataset(ds, inputShape, classes);
  if (problems.length > 0) throw dataProblemsError(ds.source, problems);
}

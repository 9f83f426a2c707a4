// Public door of coordinator/evaluations.

export type {
  EvaluationMatrix,
  EvaluationRecord,
  EvaluationRequest,
  EvaluationState,
  MatrixCell,
} from './evaluation-record.ts';
export {
  EVALUATION_DEFAULTS,
  evaluationMatrix,
  evaluationRequestOf,
  parseEvaluationRequest,
} from './evaluation-record.ts';
export type { EvaluationOrigin, EvaluationServiceOptions } from './evaluation-service.ts';
export { EvaluationService } from './evaluation-service.ts';
export type { EvaluationStore } from './evaluation-store.ts';
export { createLevelEvaluationStore } from './evaluation-store.ts';

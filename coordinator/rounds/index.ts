// Public door of coordinator/rounds.

export type {
  AgentClaims,
  AgentPool,
  AgentSoftware,
  AgentTasks,
  EvaluateOutcome,
  EvaluateTask,
  TaskKind,
  TrainOutcome,
  TrainTask,
} from './agent-pool.ts';
export type { RobustnessSettings } from './contribution.ts';
export {
  clipNormFrom,
  lowerMedian,
  median,
  medianMetrics,
  ROBUSTNESS_DEFAULTS,
  weightCap,
} from './contribution.ts';
export type { CheckedEvaluation, EvaluationAggregate, EvaluationBounds } from './evaluation-check.ts';
export {
  aggregateEvaluations,
  checkEvaluation,
  EVALUATION_WEIGHT_CAP_RATIO,
  evaluationWeight,
} from './evaluation-check.ts';
export type {
  AgentEvaluation,
  EvaluationFailure,
  EvaluationPlan,
  EvaluationRoundResult,
  EvaluationRoundState,
} from './evaluation-round.ts';
export { EvaluationRound, runEvaluationRound } from './evaluation-round.ts';
export type {
  RoundEvent,
  RoundFailure,
  RoundParticipant,
  RoundPlan,
  RoundProgress,
  RoundResult,
  RoundState,
} from './round.ts';
export { Round, runRound } from './round.ts';

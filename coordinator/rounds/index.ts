// Public door of coordinator/rounds.

export type { AgentPool, TrainOutcome, TrainTask } from './agent-pool.ts';
export type { RobustnessSettings } from './contribution.ts';
export {
  clipNormFrom,
  lowerMedian,
  median,
  medianMetrics,
  ROBUSTNESS_DEFAULTS,
  weightCap,
} from './contribution.ts';
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

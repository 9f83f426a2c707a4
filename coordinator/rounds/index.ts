// Public door of coordinator/rounds.

export type { AgentPool, TrainOutcome, TrainTask } from './agent-pool.ts';
export type { RoundFailure, RoundOutcome, RoundParticipant, RoundPlan } from './round-runner.ts';
export { runRound, weightedMetrics } from './round-runner.ts';

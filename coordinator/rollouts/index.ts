// Public door of coordinator/rollouts: staged, health-gated rollouts and retirements.

export { HealthCounter, healthViolation, p99Of, summarize } from './health.ts';
export type { RetirementRecord, RetirementServiceOptions } from './retirement-service.ts';
export { RETIREMENT_DEFAULTS, RetirementService } from './retirement-service.ts';
export type {
  AgentRolloutState,
  HealthSummary,
  RolloutAgent,
  RolloutPlan,
  RolloutPolicy,
  RolloutPromotion,
  RolloutRecord,
  RolloutRequest,
  RolloutState,
  RolloutTarget,
  RolloutWave,
  WaveState,
} from './rollout-record.ts';
export {
  assignWaves,
  PROMOTION_ROLLOUT_DEFAULTS,
  parseRolloutPlan,
  parseRolloutRequest,
  parseWaves,
  ROLLOUT_DEFAULTS,
  resolveRolloutPlan,
  rolloutRequestOf,
} from './rollout-record.ts';
export type { RolloutServiceOptions, RolloutView } from './rollout-service.ts';
export { ROLLOUT_SERVICE_DEFAULTS, RolloutService } from './rollout-service.ts';

// Public door of coordinator/lifecycle.

export type { LifecycleServiceOptions, LifecycleView, StageChange } from './lifecycle-service.ts';
export { ALIAS_PATTERN, IF_BETTER_POLICY, LifecycleService } from './lifecycle-service.ts';
export type { AliasRecord, LifecycleStore, Stage, VersionLifecycle } from './lifecycle-store.ts';
export { createLevelLifecycleStore, DEFAULT_LIFECYCLE, STAGES } from './lifecycle-store.ts';
export type { GateEvaluation, PromotionPolicy } from './promotion-gate.ts';
export { gateFigure, gateReasons, parsePromotionPolicy } from './promotion-gate.ts';

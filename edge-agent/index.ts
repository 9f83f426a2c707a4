// Public door of edge-agent.

export type { EdgeAgentOptions, EdgeAgentStatus } from './agent.ts';
export { AGENT_VERSION, EDGE_AGENT_DEFAULTS, EdgeAgent } from './agent.ts';
export { assertMnistInstalled, readMnist, writeIdx } from './data/index.ts';
export type { EnrollOptions, ExistingIdentity } from './enrollment/index.ts';
export { enrollAgent } from './enrollment/index.ts';
export type { AgentIdentity } from './identity/index.ts';
export { loadIdentity } from './identity/index.ts';
export type { BatchingOptions } from './inference/index.ts';
export { BATCHING_DEFAULTS } from './inference/index.ts';
export type { TrainingPath } from './training/index.ts';
export { DEFAULT_TRAINING_THREADS } from './training/index.ts';

// Public door of coordinator/directory.

export type { AgentDirectory, AgentPatch, AgentRecord } from './agent-directory.ts';
export { assertEnrollmentTokenUsable, enrollmentTokenInvalid } from './enrollment-token-check.ts';
export { selectByLabels } from './label-selection.ts';
export { createLevelAgentDirectory } from './level-agent-directory.ts';
export { createLevelTokenStore } from './level-token-store.ts';
export { assertRecordId, MAX_ID_LENGTH } from './record-id.ts';
export type { ApiTokenRecord, EnrollmentTokenRecord, Role, TokenStore } from './token-store.ts';

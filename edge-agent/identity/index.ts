// Public door of edge-agent/identity.

export type { AgentIdentity } from './agent-identity.ts';
export { identityDir, loadIdentity, saveIdentity } from './agent-identity.ts';
export type { RevocationRecord } from './revocation-record.ts';
export {
  loadRevocationRecord,
  revocationRecordPath,
  saveRevocationRecord,
} from './revocation-record.ts';

// What the operator API needs from the rest of the coordinator, and the per-request caller.
import type { RevocationList } from '../../certs/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { AuditLog } from '../audit/index.ts';
import type { DeploymentService } from '../deployments/index.ts';
import type { AgentDirectory, Role, TokenStore } from '../directory/index.ts';
import type { EnrollmentService } from '../enrollment/index.ts';
import type { AgentGateway } from '../gateway/index.ts';
import type { JobService } from '../jobs/index.ts';
import type { ModelRegistry } from '../registry/index.ts';

export interface ApiDeps {
  registry: ModelRegistry;
  jobs: JobService;
  agents: AgentDirectory;
  tokens: TokenStore;
  audit: AuditLog;
  enrollment: EnrollmentService;
  deployments: DeploymentService;
  gateway: AgentGateway;
  caCertPem: string;
  caFingerprint: string;
  /** Checked by the gateway at every connection; the revoke call adds to it. */
  revocations: RevocationList;
  /** Port of the agent gateway, told to agents at enrollment. */
  agentPort: () => number;
  /** TensorFlow.js backend in use. */
  backend: () => string;
  log: Logger;
}

export interface Caller {
  tokenId: string;
  name: string;
  role: Role;
}

export type ApiEnv = { Variables: { caller: Caller } };

// What the operator API needs from the rest of the coordinator, and the per-request caller and
// remote address.
import type { Context } from 'hono';
import type { RevocationList } from '../../certs/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import type { AuditLog } from '../audit/index.ts';
import type { DeploymentService } from '../deployments/index.ts';
import type { AgentDirectory, Role, TokenStore } from '../directory/index.ts';
import type { EnrollmentService } from '../enrollment/index.ts';
import type { EvaluationService } from '../evaluations/index.ts';
import type { AgentGateway } from '../gateway/index.ts';
import type { JobService } from '../jobs/index.ts';
import type { LifecycleService } from '../lifecycle/index.ts';
import type { ModelRegistry } from '../registry/index.ts';
import type { RetirementService, RolloutService } from '../rollouts/index.ts';

export interface ApiDeps {
  registry: ModelRegistry;
  jobs: JobService;
  agents: AgentDirectory;
  tokens: TokenStore;
  audit: AuditLog;
  enrollment: EnrollmentService;
  deployments: DeploymentService;
  rollouts: RolloutService;
  retirements: RetirementService;
  evaluations: EvaluationService;
  lifecycle: LifecycleService;
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

/**
 * What @hono/node-server passes as `c.env`: the Node request, whose socket gives the peer address.
 * Optional, because `app.request()` in tests passes nothing (or a hand-made object).
 */
export interface ApiBindings {
  incoming?: { socket?: { remoteAddress?: string } };
}

export type ApiEnv = { Bindings: ApiBindings; Variables: { caller: Caller } };

/**
 * The TCP peer address of the request, or undefined outside a Node server. Taken from the socket,
 * never from X-Forwarded-For or similar headers, which any client can set.
 */
export function remoteAddress(c: Context<ApiEnv>): string | undefined {
  return c.env?.incoming?.socket?.remoteAddress;
}

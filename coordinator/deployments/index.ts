// Public door of coordinator/deployments.

export type {
  AgentTarget,
  DeploymentEvents,
  DeploymentProgress,
  DeploymentServiceOptions,
  DeploymentTarget,
  DeployToOptions,
} from './deployment-service.ts';
export { DeploymentService } from './deployment-service.ts';

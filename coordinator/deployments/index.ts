// Public door of coordinator/deployments.

export type { DeploymentServiceOptions, DeploymentTarget } from './deployment-service.ts';
export { DeploymentService } from './deployment-service.ts';

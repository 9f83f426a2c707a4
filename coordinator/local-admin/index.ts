// Public door of coordinator/local-admin: the running coordinator's local admin socket.

export type { AdminSocket } from './admin-socket.ts';
export {
  adminSocketPath,
  auditReportFromRunningCoordinator,
  backupFromRunningCoordinator,
  startAdminSocket,
} from './admin-socket.ts';

// Public door of coordinator/enrollment.

export type { EnrollmentServiceOptions, EnrollResult } from './enrollment-service.ts';
export { EnrollmentService } from './enrollment-service.ts';

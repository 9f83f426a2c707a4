// Public door of edge-agent/enrollment.

export type { EnrollOptions, EnrollResponse, ExistingIdentity } from './enroll.ts';
export { enrollAgent } from './enroll.ts';

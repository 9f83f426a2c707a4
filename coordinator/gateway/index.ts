// Public door of coordinator/gateway.

export type { AgentGatewayOptions, AuthorizeResult, GatewayEvents } from './agent-gateway.ts';
export { AgentGateway, GATEWAY_DEFAULTS } from './agent-gateway.ts';
export type { AgentSession, AgentSessionInfo } from './agent-session.ts';
export { HEALTH_REPORT_LIMITS, HealthReportCheck } from './health-report-check.ts';

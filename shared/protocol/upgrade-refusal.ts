// How the agent gateway says why it refused a WebSocket upgrade, so an agent can tell a
// revocation from other refusals without reading free text.

/**
 * Response header of a refused upgrade naming a stable error code: `LOOM_ERR_CERT_REVOKED`
 * when the agent is revoked (it stays so for good), `LOOM_ERR_UNAUTHORIZED` for an unknown
 * agent or a certificate superseded by a renewal.
 */
export const REFUSAL_CODE_HEADER = 'loom-error-code';

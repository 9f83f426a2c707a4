// Public door of edge-agent/api-keys: the site's own keys for the agent's inference API.

export type { ApiKeyInfo, ApiKeyRecord } from './key-file.ts';
export { apiKeyFilePath, createApiKey, listApiKeys, readApiKeyFile, revokeApiKey } from './key-file.ts';
export type { ApiKeyRingOptions } from './key-ring.ts';
export { API_KEY_RING_DEFAULTS, ApiKeyRing } from './key-ring.ts';

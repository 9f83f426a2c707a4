// Public door of edge-agent/store: the agent's local model versions.

export type { LocalModelStoreOptions } from './model-store.ts';
export { agentDataKeyFile, openLocalModelStore } from './model-store.ts';
export type { LocalModelStore, NewVersion, StoredVersion } from './types.ts';

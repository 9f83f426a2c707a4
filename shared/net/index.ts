// Public door of shared/net.

export type { ListenTarget } from './listen-error.ts';
export { listenError } from './listen-error.ts';

// Public door of shared/fs: small files written so that a crash never leaves half of one.

export type { AtomicWriteOptions } from './atomic-write.ts';
export { writeFileAtomic } from './atomic-write.ts';

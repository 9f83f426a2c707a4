// Starts a fast training thread: loads the TypeScript sources through tsx, as the CLI does, so a
// worker starts the same way under the CLI, the benchmarks and the tests.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');

#!/usr/bin/env node
// Entry point of the `loom` command: loads the TypeScript sources through tsx and runs the CLI.
import { createRequire } from 'node:module';
import { register } from 'tsx/esm/api';

// A running agent holds TensorFlow.js for as long as it runs. Loaded before the TypeScript
// loader is registered, its JavaScript is compiled by Node alone: the loader's hooks and the
// source-map cache it turns on keep nothing of it (about 25 MiB less resident memory). The
// sources import the very same module instance afterwards.
if (process.argv[2] === 'agent' && process.argv[3] === 'start') {
  const require = createRequire(import.meta.url);
  require('@tensorflow/tfjs');
  require('@tensorflow/tfjs-backend-wasm');
}

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));

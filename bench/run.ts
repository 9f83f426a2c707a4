// Entry of `npm run bench -- NAME [--flags]`: loads bench/NAME.ts and runs it with the flags.

/** What every benchmark module exports. */
export interface BenchModule {
  run(argv: string[]): Promise<void>;
}

// Loaded on demand so one benchmark's imports (tfjs, wasm backends) never slow another's start.
const BENCHES: Record<string, () => Promise<BenchModule>> = {
  aggregate: () => import('./aggregate.ts'),
  fleet: () => import('./fleet.ts'),
  gemm: () => import('./gemm.ts'),
  rollout: () => import('./rollout.ts'),
  'rollout-large': () => import('./rollout-large.ts'),
  round: () => import('./round.ts'),
  serve: () => import('./serve.ts'),
  train: () => import('./train.ts'),
};

function usage(): string {
  return `usage: npm run bench -- NAME [--flags]\nbenches: ${Object.keys(BENCHES).join(', ')}`;
}

const [name, ...argv] = process.argv.slice(2);
const load = name !== undefined && Object.hasOwn(BENCHES, name) ? BENCHES[name] : undefined;
if (!load) {
  console.error(name === undefined ? usage() : `unknown bench "${name}"\n${usage()}`);
  process.exit(1);
}
const bench = await load();
await bench.run(argv);

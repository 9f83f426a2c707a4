// Benchmark of the aggregation engines: fold C client updates of P parameters, then average.
import { parseArgs } from 'node:util';
import {
  type Aggregator,
  createAggregationEngine,
  ENGINE_NAMES,
  type EngineName,
} from '../coordinator/aggregation/index.ts';
import { initCompute } from '../shared/compute/index.ts';
import { countParams, type WeightSpec, type WeightTensor } from '../shared/tensors/index.ts';

const DEFAULT_CLIENTS = 100;
/** Parameters of the FedAvg paper's MNIST CNN, the layout used when --params is left alone. */
const DEFAULT_PARAMS = 1_663_370;
/** Distinct update buffers generated; the C folds cycle through them, which the engine cannot tell. */
const POOL_SIZE = 4;

const DEFAULT_RUNS = 3;

const USAGE = `usage: npm run bench -- aggregate [--clients C] [--params P] [--engine typed-array|tfjs|both] [--runs N] [--json]
  --clients  updates folded per run (default ${DEFAULT_CLIENTS})
  --params   parameters per update (default ${DEFAULT_PARAMS}, the FedAvg MNIST CNN)
  --engine   engine to time (default both)
  --runs     runs per engine, each on a fresh aggregator; the median is reported (default ${DEFAULT_RUNS})
  --json     one JSON line per engine instead of a readable line`;

/**
 * One engine's figures. `ms` times the C folds plus average() (the median run; `bestMs` the
 * fastest), split into `foldMs` and `averageMs`; `createMs` is creating the aggregator, kept
 * apart as a once-per-round cost. `extraRssMB` is peak RSS while folding minus RSS before the
 * aggregator existed (worst run).
 */
interface Result {
  engine: EngineName;
  clients: number;
  params: number;
  ms: number;
  inputGBps: number;
  peakRssMB: number;
  extraRssMB: number;
  bestMs: number;
  foldMs: number;
  averageMs: number;
  createMs: number;
  runs: number;
}

/** The figures of one run. */
interface Run {
  ms: number;
  foldMs: number;
  averageMs: number;
  createMs: number;
  peakRss: number;
  extraRss: number;
}

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(1);
}

function positiveInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) fail(`--${flag} must be a positive integer, got "${text}"`);
  return n;
}

function spec(name: string, shape: number[]): WeightSpec {
  return { name, shape, dtype: 'float32' };
}

/**
 * Tensors adding up to `params`: the CNN of McMahan et al. (two 5×5 convolutions, a 3136×512
 * dense layer, a 512×10 head) for the default, otherwise a 784→h→10 MLP plus a remainder vector.
 */
function layout(params: number): WeightSpec[] {
  if (params === DEFAULT_PARAMS) {
    return [
      spec('conv1/kernel', [5, 5, 1, 32]),
      spec('conv1/bias', [32]),
      spec('conv2/kernel', [5, 5, 32, 64]),
      spec('conv2/bias', [64]),
      spec('dense1/kernel', [3136, 512]),
      spec('dense1/bias', [512]),
      spec('dense2/kernel', [512, 10]),
      spec('dense2/bias', [10]),
    ];
  }
  const hidden = Math.floor((params - 10) / (784 + 1 + 10 + 1));
  if (hidden < 1) return [spec('dense/kernel', [params])];
  const specs = [
    spec('dense1/kernel', [784, hidden]),
    spec('dense1/bias', [hidden]),
    spec('dense2/kernel', [hidden, 10]),
    spec('dense2/bias', [10]),
    spec('norm/scale', [hidden]),
  ];
  const rest = params - countParams(specs);
  if (rest > 0) specs.push(spec('norm/offset', [rest]));
  return specs;
}

/** Small random deltas, as a client's local training would produce. */
function randomUpdate(specs: readonly WeightSpec[]): WeightTensor[] {
  return specs.map((s) => {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (Math.random() - 0.5) * 0.02;
    return { ...s, shape: [...s.shape], data };
  });
}

const MB = 1024 * 1024;

function timeRun(engine: EngineName, specs: WeightSpec[], pool: WeightTensor[][], clients: number): Run {
  const rssBefore = process.memoryUsage.rss();
  let peakRss = rssBefore;
  let foldMs = 0;
  let aggregator: Aggregator | undefined;
  try {
    let start = performance.now();
    aggregator = createAggregationEngine(engine).createAggregator(specs);
    const createMs = performance.now() - start;
    for (let c = 0; c < clients; c++) {
      const update = pool[c % pool.length];
      const weight = 1 + (c % 7);
      start = performance.now();
      aggregator.fold(update, weight);
      foldMs += performance.now() - start;
      // Sampled outside the timed span: reading RSS costs a system call.
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
    }
    start = performance.now();
    aggregator.average();
    const averageMs = performance.now() - start;
    return { ms: foldMs + averageMs, foldMs, averageMs, createMs, peakRss, extraRss: peakRss - rssBefore };
  } finally {
    aggregator?.dispose();
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function timeEngine(
  engine: EngineName,
  specs: WeightSpec[],
  pool: WeightTensor[][],
  clients: number,
  runs: number,
): Result {
  const all = Array.from({ length: runs }, () => timeRun(engine, specs, pool, clients));
  const byTime = [...all].sort((a, b) => a.ms - b.ms);
  const median = byTime[Math.floor((runs - 1) / 2)];
  const params = countParams(specs);
  return {
    engine,
    clients,
    params,
    ms: round1(median.ms),
    inputGBps: Math.round(((clients * params * 4) / (median.ms / 1000) / 1e9) * 100) / 100,
    peakRssMB: round1(Math.max(...all.map((r) => r.peakRss)) / MB),
    extraRssMB: round1(Math.max(...all.map((r) => r.extraRss)) / MB),
    bestMs: round1(byTime[0].ms),
    foldMs: round1(median.foldMs),
    averageMs: round1(median.averageMs),
    createMs: round1(median.createMs),
    runs,
  };
}

/** Parses the flags, then times each requested engine `--runs` times and prints its figures. */
export async function run(argv: string[]): Promise<void> {
  let values: {
    clients?: string;
    params?: string;
    engine?: string;
    runs?: string;
    json?: boolean;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        clients: { type: 'string' },
        params: { type: 'string' },
        engine: { type: 'string' },
        runs: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const clients = positiveInt('clients', values.clients, DEFAULT_CLIENTS);
  const params = positiveInt('params', values.params, DEFAULT_PARAMS);
  const runs = positiveInt('runs', values.runs, DEFAULT_RUNS);
  const choice = values.engine ?? 'both';
  const engines: EngineName[] =
    choice === 'both'
      ? [...ENGINE_NAMES]
      : ENGINE_NAMES.includes(choice as EngineName)
        ? [choice as EngineName]
        : fail(`--engine must be typed-array, tfjs or both, got "${choice}"`);

  const specs = layout(params);
  const pool = Array.from({ length: Math.min(POOL_SIZE, clients) }, () => randomUpdate(specs));
  for (const engine of engines) {
    const backend = engine === 'tfjs' ? (await initCompute()).name : 'js+wasm-simd';
    const r = timeEngine(engine, specs, pool, clients, runs);
    if (values.json) {
      console.log(JSON.stringify(r));
    } else {
      const modelMB = (params * 4) / MB;
      console.log(
        `${r.engine} (${backend}): ${r.clients} clients × ${r.params} params folded and averaged in ` +
          `${r.ms} ms (median of ${r.runs}, best ${r.bestMs}) = ${r.inputGBps} GB/s of input; ` +
          `folds ${r.foldMs} ms, average ${r.averageMs} ms, create ${r.createMs} ms; extra RSS ${r.extraRssMB} MB ` +
          `(${(r.extraRssMB / modelMB).toFixed(1)}× the ${modelMB.toFixed(1)} MB model), peak ${r.peakRssMB} MB`,
      );
    }
  }
}

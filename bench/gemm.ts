// Benchmark of the fast training path's matrix product against TensorFlow.js's wasm matMul, on the
// shapes one MLP training step multiplies (batch × 784 · 784 × 200, its transposed-A gradient), 512³
// and the CNN's largest.
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { instantiateGemms, kernelMemory } from '../edge-agent/training/fast/gemm-kernel.ts';
import { initCompute } from '../shared/compute/index.ts';

const USAGE = `usage: npm run bench -- gemm [--json]
  --json  one JSON line per shape instead of a readable line`;

interface Result {
  shape: string;
  loomGflops: number;
  tfjsGflops: number;
  tfjsBackend: string;
}

/** [M, N, K, A transposed]; M, N, K already padded to the kernel's blocks. */
const SHAPES: readonly [number, number, number, boolean][] = [
  [12, 208, 784, false],
  [12, 512, 3136, false],
  [32, 208, 784, false],
  [784, 208, 12, true],
  [784, 208, 32, true],
  [512, 512, 512, false],
  // The CNN's: its dense layer of 512 at batch 10, the second convolution forward and its update.
  [1960, 64, 800, false],
  [800, 64, 1960, true],
];

function timeIt(fn: () => void, flops: number): number {
  for (let i = 0; i < 5; i++) fn();
  let reps = 0;
  const started = performance.now();
  while (performance.now() - started < 300) {
    fn();
    reps++;
  }
  return (flops * reps) / ((performance.now() - started) * 1e6);
}

export async function run(argv: string[]): Promise<void> {
  let values: { json?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } } }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(1);
  }
  const backend = await initCompute();
  const memory = kernelMemory(16 << 20);
  for (const [m, n, k, transA] of SHAPES) {
    const a = 0;
    const b = m * k * 4;
    const c = b + k * n * 4;
    const bias = c + m * n * 4;
    const shape = {
      saRow: transA ? 4 : k * 4,
      saCol: transA ? m * 4 : 4,
      ldb: n * 4,
      ldc: n * 4,
      ldi: 0,
      relu: false,
    };
    const { gemm } = instantiateGemms({ gemm: shape }, memory);
    const view = new Float32Array(memory.buffer, 0, (bias + n * 4) / 4);
    for (let i = 0; i < view.length; i++) view[i] = Math.random() - 0.5;
    const flops = 2 * m * n * k;
    const loomGflops = timeIt(() => gemm(a, b, c, bias, m, n * 4, k, 1), flops);
    const x = tf.randomNormal(transA ? [k, m] : [m, k]);
    const w = tf.randomNormal([k, n]);
    const tfjsGflops = timeIt(() => {
      const y = tf.matMul(x, w, transA, false);
      y.dataSync();
      y.dispose();
    }, flops);
    tf.dispose([x, w]);
    const result: Result = {
      shape: `${m}x${k}${transA ? 'ᵀ' : ''}·${k}x${n}`,
      loomGflops: Number(loomGflops.toFixed(2)),
      tfjsGflops: Number(tfjsGflops.toFixed(2)),
      tfjsBackend: backend.name,
    };
    console.log(
      values.json
        ? JSON.stringify(result)
        : `${result.shape.padEnd(16)} fast path ${result.loomGflops} GFLOP/s, tfjs ${backend.name} ${result.tfjsGflops} GFLOP/s`,
    );
  }
}

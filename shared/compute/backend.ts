// Picks the TensorFlow.js backend at start-up, best first, and remembers the choice.
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

/** Order in which backends are tried when none is requested. */
export const BACKEND_PREFERENCE: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendChoice {
  /** The backend that was chosen, as reported by `/healthz`. */
  name: BackendName;
  /** The npm package that provides it. */
  package: string;
  /** Why better backends were skipped (for the start-up log). */
  skipped: string[];
}

const PACKAGES: Record<BackendName, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs',
};

let chosen: BackendChoice | undefined;
let pending: Promise<BackendChoice> | undefined;

async function tryBackend(name: BackendName): Promise<string | undefined> {
  try {
    if (name === 'tensorflow-gpu' || name === 'tensorflow') {
      // The native packages register the 'tensorflow' backend when imported. They are optional:
      // a user installs them; they are not dependencies of Loom.
      const require = createRequire(import.meta.url);
      require.resolve(PACKAGES[name]);
      await import(PACKAGES[name]);
      if (!(await tf.setBackend('tensorflow'))) return 'failed to initialise';
    } else if (name === 'wasm') {
      await import('@tensorflow/tfjs-backend-wasm');
      if (!(await tf.setBackend('wasm'))) return 'failed to initialise';
    } else if (!(await tf.setBackend('cpu'))) {
      return 'failed to initialise';
    }
    await tf.ready();
    return undefined;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') return 'not installed';
    return (err as Error).message.split('\n')[0];
  }
}

/**
 * Chooses the TensorFlow.js backend once per process: `tensorflow-gpu` (tfjs-node-gpu, CUDA),
 * then `tensorflow` (tfjs-node), then `wasm`, then the plain JS `cpu` backend. `preferred`
 * (or env `LOOM_TF_BACKEND`) restricts the choice to that backend and the ones after it.
 * Later calls return the first choice.
 */
export function initCompute(preferred?: BackendName): Promise<BackendChoice> {
  if (chosen) return Promise.resolve(chosen);
  if (pending) return pending;
  pending = (async () => {
    const want = preferred ?? (process.env.LOOM_TF_BACKEND as BackendName | undefined);
    const start = want && BACKEND_PREFERENCE.includes(want) ? BACKEND_PREFERENCE.indexOf(want) : 0;
    const skipped: string[] = [];
    for (const name of BACKEND_PREFERENCE.slice(start)) {
      const why = await tryBackend(name);
      if (why === undefined) {
        chosen = { name, package: PACKAGES[name], skipped };
        return chosen;
      }
      skipped.push(`${PACKAGES[name]}: ${why}`);
    }
    throw new Error(`no TensorFlow.js backend could be initialised (${skipped.join('; ')})`);
  })();
  return pending;
}

/** The backend chosen by `initCompute`, if it has run. */
export function currentBackend(): BackendChoice | undefined {
  return chosen;
}

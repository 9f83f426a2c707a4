// Picks an aggregation engine by name.
import { LoomError } from '../../shared/errors/index.ts';
import { tfjsEngine } from './tfjs-engine.ts';
import { typedArrayEngine } from './typed-array-engine.ts';
import type { AggregationEngine, EngineName } from './types.ts';

const ENGINES: Record<EngineName, AggregationEngine> = {
  'typed-array': typedArrayEngine,
  tfjs: tfjsEngine,
};

/** Every engine name, for flags and config validation. */
export const ENGINE_NAMES: readonly EngineName[] = ['typed-array', 'tfjs'];

/**
 * The engine called `name`: 'typed-array' (CPU, streaming) or 'tfjs' (tensor ops on the backend
 * chosen by `initCompute`). Throws LOOM_ERR_INVALID_ARGUMENT for any other name.
 */
export function createAggregationEngine(name: EngineName): AggregationEngine {
  const engine = Object.hasOwn(ENGINES, name) ? ENGINES[name] : undefined;
  if (!engine) {
    throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `unknown aggregation engine "${String(name)}"`, {
      details: { known: [...ENGINE_NAMES] },
    });
  }
  return engine;
}

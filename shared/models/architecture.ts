// Model architectures a job can train: built-in MLP and logistic regression, or a TensorFlow.js
// layers topology. Parsing validates untrusted input from the API.
import { LoomError } from '../errors/index.ts';

export type Activation = 'relu' | 'tanh' | 'sigmoid' | 'elu' | 'selu' | 'linear';
const ACTIVATIONS: readonly Activation[] = ['relu', 'tanh', 'sigmoid', 'elu', 'selu', 'linear'];

/** A multi-layer perceptron: `layers` lists the units of each dense layer, the last being the classes. */
export interface MlpArchitecture {
  kind: 'mlp';
  inputShape: number[];
  layers: number[];
  activation: Activation;
}

/** Multinomial logistic regression (one dense softmax layer). */
export interface LogisticArchitecture {
  kind: 'logistic';
  inputShape: number[];
  classes: number;
}

/** A TensorFlow.js layers model topology (the `modelTopology` of a model.json). */
export interface TfjsArchitecture {
  kind: 'tfjs';
  topology: Record<string, unknown>;
}

export type ModelArchitecture = MlpArchitecture | LogisticArchitecture | TfjsArchitecture;

const MAX_UNITS = 65_536;
const MAX_LAYERS = 64;

function fail(field: string, message: string): never {
  throw new LoomError('LOOM_ERR_MODEL_SPEC', `${field}: ${message}`, { details: { field } });
}

function positiveInts(value: unknown, field: string, max: number): number[] {
  if (!Array.isArray(value) || value.length === 0)
    fail(field, 'must be a non-empty array of positive integers');
  for (const v of value) {
    if (!Number.isSafeInteger(v) || v <= 0 || v > max)
      fail(field, `must hold positive integers up to ${max}`);
  }
  return [...(value as number[])];
}

/**
 * Validates an architecture from the API or a file. `mlp` takes `inputShape` (or `inputs`, a
 * number), `layers` and `activation` (default relu); `logistic` takes `inputShape`/`inputs` and
 * `classes`; `tfjs` takes `topology` (a model.json, or its `modelTopology`).
 */
export function parseArchitecture(input: unknown, field = 'architecture'): ModelArchitecture {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) fail(field, 'must be an object');
  const a = input as Record<string, unknown>;
  const inputShape = (): number[] =>
    typeof a.inputs === 'number'
      ? positiveInts([a.inputs], `${field}.inputs`, 1 << 24)
      : positiveInts(a.inputShape, `${field}.inputShape`, 1 << 24);
  switch (a.kind) {
    case 'mlp': {
      const layers = positiveInts(a.layers, `${field}.layers`, MAX_UNITS);
      if (layers.length > MAX_LAYERS) fail(`${field}.layers`, `at most ${MAX_LAYERS} layers`);
      if (layers[layers.length - 1] < 2)
        fail(`${field}.layers`, 'the last layer (classes) needs at least 2 units');
      const activation = a.activation ?? 'relu';
      if (!ACTIVATIONS.includes(activation as Activation)) {
        fail(`${field}.activation`, `must be one of ${ACTIVATIONS.join(', ')}`);
      }
      return { kind: 'mlp', inputShape: inputShape(), layers, activation: activation as Activation };
    }
    case 'logistic': {
      const classes = a.classes;
      if (!Number.isSafeInteger(classes) || (classes as number) < 2 || (classes as number) > MAX_UNITS) {
        fail(`${field}.classes`, 'must be an integer of at least 2');
      }
      return { kind: 'logistic', inputShape: inputShape(), classes: classes as number };
    }
    case 'tfjs': {
      let topology = a.topology;
      if (topology && typeof topology === 'object' && 'modelTopology' in topology) {
        topology = (topology as { modelTopology: unknown }).modelTopology;
      }
      if (!topology || typeof topology !== 'object' || Array.isArray(topology)) {
        fail(`${field}.topology`, 'must be a TensorFlow.js layers model topology object');
      }
      const t = topology as Record<string, unknown>;
      if (typeof t.class_name !== 'string' || !t.config || typeof t.config !== 'object') {
        fail(`${field}.topology`, 'needs class_name and config (a Keras/TensorFlow.js layers topology)');
      }
      return { kind: 'tfjs', topology: t };
    }
    default:
      return fail(`${field}.kind`, 'must be "mlp", "logistic" or "tfjs"');
  }
}

/** A one-line human summary, e.g. `mlp 784-200-200-10 relu`. */
export function describeArchitecture(arch: ModelArchitecture): string {
  switch (arch.kind) {
    case 'mlp':
      return `mlp ${[arch.inputShape.join('x'), ...arch.layers].join('-')} ${arch.activation}`;
    case 'logistic':
      return `logistic ${arch.inputShape.join('x')}-${arch.classes}`;
    case 'tfjs':
      return `tfjs ${String(arch.topology.class_name)}`;
  }
}

/**
 * Parameters of a built-in architecture, counted without building it (a model far too large to
 * build is refused by its count): dense layers have inputs × units weights and units biases.
 * Undefined for a TensorFlow.js topology, whose count is known only once built.
 */
export function architectureParamCount(arch: ModelArchitecture): number | undefined {
  if (arch.kind === 'tfjs') return undefined;
  let inputs = arch.inputShape.reduce((a, b) => a * b, 1);
  let total = 0;
  for (const units of arch.kind === 'mlp' ? arch.layers : [arch.classes]) {
    total += inputs * units + units;
    inputs = units;
  }
  return total;
}

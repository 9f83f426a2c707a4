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
/**
 * Most weights (parameters) an mlp or logistic model may have: 2^24, the float32 values one
 * protocol frame of the default size (64 MiB) can carry, since the global weights travel to each
 * agent in one frame. Without it, in-range shapes multiply to billions of values and building
 * the model exhausts memory instead of failing with a clear error.
 */
export const MAX_PARAMETERS = 1 << 24;

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

/** Dense layers of `units` after an input of `inputShape`: kernel and bias of each, at most MAX_PARAMETERS. */
function assertParameterCount(field: string, inputShape: readonly number[], units: readonly number[]): void {
  let inputs = inputShape.reduce((n, d) => n * d, 1);
  let params = 0;
  for (const u of units) {
    params += inputs * u + u;
    inputs = u;
  }
  if (params > MAX_PARAMETERS) {
    fail(field, `has ${params} parameters, more than the ${MAX_PARAMETERS} a Loom model may have`);
  }
}

/**
 * Validates an architecture from the API or a file. `mlp` takes `inputShape` (or `inputs`, a
 * number), `layers` and `activation` (default relu); `logistic` takes `inputShape`/`inputs` and
 * `classes`; `tfjs` takes `topology` (a model.json, or its `modelTopology`). An mlp or logistic
 * model with more than MAX_PARAMETERS weights is refused.
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
      const shape = inputShape();
      assertParameterCount(field, shape, layers);
      return { kind: 'mlp', inputShape: shape, layers, activation: activation as Activation };
    }
    case 'logistic': {
      const classes = a.classes;
      if (!Number.isSafeInteger(classes) || (classes as number) < 2 || (classes as number) > MAX_UNITS) {
        fail(`${field}.classes`, 'must be an integer of at least 2');
      }
      const shape = inputShape();
      assertParameterCount(field, shape, [classes as number]);
      return { kind: 'logistic', inputShape: shape, classes: classes as number };
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

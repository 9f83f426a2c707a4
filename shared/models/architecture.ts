// Model architectures a job can train: built-in MLP and logistic regression, or a TensorFlow.js
// layers topology. Parsing validates untrusted input from the API.
import { LoomError } from '../errors/index.ts';
import { largestDimension, topologyParamCount } from './topology-count.ts';

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

/**
 * The convolutional network of the FedAvg paper: two 5×5 'same' convolutions (32 and 64
 * channels, ReLU), each followed by 2×2 max pooling, a dense layer of 512 (ReLU) and a softmax.
 * `inputShape` is `[height, width, channels]` (default 28×28×1), `classes` default 10.
 */
export interface CnnArchitecture {
  kind: 'cnn';
  inputShape: number[];
  classes: number;
}

/** A TensorFlow.js layers model topology (the `modelTopology` of a model.json). */
export interface TfjsArchitecture {
  kind: 'tfjs';
  topology: Record<string, unknown>;
}

export type ModelArchitecture = MlpArchitecture | LogisticArchitecture | CnnArchitecture | TfjsArchitecture;

const MAX_UNITS = 65_536;
/** Default input and classes of the built-in CNN (MNIST). */
export const CNN_DEFAULTS = { inputShape: [28, 28, 1], classes: 10 } as const;
/** The largest image side and channel count the built-in CNN takes. */
const MAX_CNN_SIDE = 4096;
const MAX_CNN_CHANNELS = 64;
const MAX_LAYERS = 64;
/** The largest dimension a topology that cannot be counted from its JSON may name. */
const MAX_DIMENSION = 1 << 24;

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
 * `classes`; `cnn` takes `inputShape` ([height, width, channels], default 28×28×1) and `classes`
 * (default 10); `tfjs` takes `topology` (a model.json, or its `modelTopology`).
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
    case 'cnn': {
      const shape =
        a.inputShape === undefined
          ? [...CNN_DEFAULTS.inputShape]
          : positiveInts(a.inputShape, `${field}.inputShape`, MAX_CNN_SIDE);
      if (shape.length !== 3) fail(`${field}.inputShape`, 'must be [height, width, channels]');
      if (shape[0] < 4 || shape[1] < 4)
        fail(`${field}.inputShape`, 'height and width must be at least 4 (two 2×2 poolings)');
      if (shape[2] > MAX_CNN_CHANNELS) fail(`${field}.inputShape`, `at most ${MAX_CNN_CHANNELS} channels`);
      const classes = a.classes ?? CNN_DEFAULTS.classes;
      if (!Number.isSafeInteger(classes) || (classes as number) < 2 || (classes as number) > MAX_UNITS) {
        fail(`${field}.classes`, 'must be an integer of at least 2');
      }
      return { kind: 'cnn', inputShape: shape, classes: classes as number };
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
      checkInitializers(t, `${field}.topology`);
      if (topologyParamCount(t) === undefined && largestDimension(t) > MAX_DIMENSION) {
        fail(`${field}.topology`, `a layer dimension above ${MAX_DIMENSION} cannot be built`);
      }
      return { kind: 'tfjs', topology: t };
    }
    default:
      return fail(`${field}.kind`, 'must be "mlp", "logistic", "cnn" or "tfjs"');
  }
}

/** Weight initializers a topology may name, with the checks on their numeric settings. */
const INITIALIZERS: Record<string, (c: Record<string, unknown>, at: string) => void> = {
  Zeros: () => {},
  Ones: () => {},
  Constant: (c, at) => finite(c.value, `${at}.value`),
  RandomUniform: (c, at) => {
    finite(c.minval, `${at}.minval`, -0.05);
    finite(c.maxval, `${at}.maxval`, 0.05);
    if (((c.minval as number) ?? -0.05) >= ((c.maxval as number) ?? 0.05))
      fail(at, 'minval must be below maxval');
  },
  RandomNormal: (c, at) => {
    finite(c.mean, `${at}.mean`, 0);
    positive(c.stddev, `${at}.stddev`);
  },
  TruncatedNormal: (c, at) => {
    finite(c.mean, `${at}.mean`, 0);
    positive(c.stddev, `${at}.stddev`);
  },
  VarianceScaling: (c, at) => {
    positive(c.scale, `${at}.scale`);
    oneOf(c.mode, `${at}.mode`, ['fanIn', 'fanOut', 'fanAvg', 'fan_in', 'fan_out', 'fan_avg']);
    oneOf(c.distribution, `${at}.distribution`, [
      'normal',
      'uniform',
      'truncatedNormal',
      'truncated_normal',
      'untruncated_normal',
    ]);
  },
  GlorotUniform: () => {},
  GlorotNormal: () => {},
  HeNormal: () => {},
  HeUniform: () => {},
  LeCunNormal: () => {},
  LeCunUniform: () => {},
  Orthogonal: (c, at) => finite(c.gain, `${at}.gain`, 1),
  Identity: (c, at) => finite(c.gain, `${at}.gain`, 1),
};

function finite(v: unknown, at: string, fallback?: number): void {
  if (v === undefined && fallback !== undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(at, 'must be a finite number');
}

/** `v` absent (the initializer's default applies) or a positive finite number. */
function positive(v: unknown, at: string): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(at, 'must be a positive finite number');
}

function oneOf(v: unknown, at: string, allowed: readonly string[]): void {
  if (v !== undefined && !allowed.includes(v as string)) fail(at, `must be one of ${allowed.join(', ')}`);
}

/**
 * Checks every `*_initializer` of a topology before TensorFlow.js runs it: a known initializer
 * with usable settings. A truncated normal with a NaN deviation, say, samples forever: an upload
 * must not be able to hang the coordinator.
 */
function checkInitializers(node: unknown, at: string, depth = 0): void {
  if (depth > 64) fail(at, 'is nested too deeply');
  if (Array.isArray(node)) {
    for (const [i, item] of node.entries()) checkInitializers(item, `${at}.${i}`, depth + 1);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    const here = `${at}.${key}`;
    if (key.endsWith('_initializer') && value !== null && value !== undefined) {
      const init = value as { class_name?: unknown; config?: unknown };
      const check =
        typeof init.class_name === 'string' && Object.hasOwn(INITIALIZERS, init.class_name)
          ? INITIALIZERS[init.class_name]
          : undefined;
      if (!check) fail(`${here}.class_name`, `must be one of ${Object.keys(INITIALIZERS).join(', ')}`);
      const config = init.config ?? {};
      if (config === null || typeof config !== 'object' || Array.isArray(config))
        fail(`${here}.config`, 'must be an object');
      check(config as Record<string, unknown>, `${here}.config`);
      continue;
    }
    checkInitializers(value, here, depth + 1);
  }
}

/** A one-line human summary, e.g. `mlp 784-200-200-10 relu`. */
export function describeArchitecture(arch: ModelArchitecture): string {
  switch (arch.kind) {
    case 'mlp':
      return `mlp ${[arch.inputShape.join('x'), ...arch.layers].join('-')} ${arch.activation}`;
    case 'logistic':
      return `logistic ${arch.inputShape.join('x')}-${arch.classes}`;
    case 'cnn':
      return `cnn ${arch.inputShape.join('x')}-${arch.classes}`;
    case 'tfjs':
      return `tfjs ${String(arch.topology.class_name)}`;
  }
}

/**
 * Parameters of a built-in architecture, counted without building it (a model far too large to
 * build is refused by its count): dense layers have inputs × units weights and units biases.
 * A TensorFlow.js Sequential topology of known layers is counted from its JSON; any other
 * topology gives undefined, its count known only once built.
 */
export function architectureParamCount(arch: ModelArchitecture): number | undefined {
  if (arch.kind === 'tfjs') return topologyParamCount(arch.topology);
  if (arch.kind === 'cnn') return cnnParamCount(arch);
  let inputs = arch.inputShape.reduce((a, b) => a * b, 1);
  let total = 0;
  for (const units of arch.kind === 'mlp' ? arch.layers : [arch.classes]) {
    total += inputs * units + units;
    inputs = units;
  }
  return total;
}

/** The built-in CNN's layers (shared by the builder and the count). */
export const CNN_LAYERS = { conv: [32, 64], kernel: 5, pool: 2, dense: 512 } as const;

function cnnParamCount(arch: CnnArchitecture): number {
  let [h, w, channels] = arch.inputShape;
  let total = 0;
  for (const filters of CNN_LAYERS.conv) {
    total += CNN_LAYERS.kernel * CNN_LAYERS.kernel * channels * filters + filters;
    channels = filters;
    h = Math.floor(h / CNN_LAYERS.pool);
    w = Math.floor(w / CNN_LAYERS.pool);
  }
  const flat = h * w * channels;
  return total + flat * CNN_LAYERS.dense + CNN_LAYERS.dense + CNN_LAYERS.dense * arch.classes + arch.classes;
}

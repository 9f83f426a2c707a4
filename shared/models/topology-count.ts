// Counts the weights of a TensorFlow.js layers topology from its JSON, before anything is built:
// TensorFlow.js allocates and initialises every weight while it builds a model, so a topology with
// `batch_input_shape: [null, 2147483648]` would take gigabytes of the coordinator's memory before a
// size check could refuse it.

/** Layers that hold no weights and keep their input's shape. */
const SHAPE_KEEPING = new Set([
  'Activation',
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'ReLU',
  'LeakyReLU',
  'ELU',
  'Softmax',
  'ThresholdedReLU',
  'Masking',
  'LayerNormalization',
]);

type Shape = number[];

function ints(value: unknown, length: number, fallback: number[]): number[] | undefined {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'number') return Array.from({ length }, () => value);
  if (
    Array.isArray(value) &&
    value.length === length &&
    value.every((v) => Number.isSafeInteger(v) && v > 0)
  ) {
    return value as number[];
  }
  return undefined;
}

function positiveInt(value: unknown): number | undefined {
  return Number.isSafeInteger(value) && (value as number) > 0 ? (value as number) : undefined;
}

/** The shape after a 2-D window (convolution or pooling) over the spatial axes of `shape`. */
function windowed(
  shape: Shape,
  config: Record<string, unknown>,
  kernel: number[],
  strides: number[],
  channelsOut: number,
): Shape | undefined {
  const first = config.data_format === 'channels_first';
  const [h, w] = first ? [shape[1], shape[2]] : [shape[0], shape[1]];
  const dilation = ints(config.dilation_rate, 2, [1, 1]);
  if (!dilation) return undefined;
  const same = config.padding === 'same';
  const out = [h, w].map((n, i) => {
    const span = (kernel[i] - 1) * dilation[i] + 1;
    return same ? Math.ceil(n / strides[i]) : Math.floor((n - span) / strides[i]) + 1;
  });
  if (out.some((n) => !(n > 0))) return undefined;
  return first ? [channelsOut, out[0], out[1]] : [out[0], out[1], channelsOut];
}

/**
 * One layer: its weight count and output shape, or undefined when the layer is not one this
 * counter knows (its shape, and so everything after it, is then unknown).
 */
function layer(
  className: string,
  config: Record<string, unknown>,
  shape: Shape,
): { params: number; shape: Shape } | undefined {
  const useBias = config.use_bias !== false;
  if (SHAPE_KEEPING.has(className)) return { params: 0, shape };
  switch (className) {
    case 'InputLayer':
      return { params: 0, shape };
    case 'Dense': {
      const units = positiveInt(config.units);
      if (units === undefined || shape.length === 0) return undefined;
      const inputs = shape[shape.length - 1];
      return { params: inputs * units + (useBias ? units : 0), shape: [...shape.slice(0, -1), units] };
    }
    case 'Flatten':
      return { params: 0, shape: [shape.reduce((a, b) => a * b, 1)] };
    case 'Reshape': {
      const target = config.target_shape;
      if (!Array.isArray(target) || !target.every((v) => Number.isSafeInteger(v) && (v > 0 || v === -1))) {
        return undefined;
      }
      const known = (target as number[]).filter((v) => v > 0).reduce((a, b) => a * b, 1);
      const total = shape.reduce((a, b) => a * b, 1);
      return {
        params: 0,
        shape: (target as number[]).map((v) => (v === -1 ? Math.max(1, total / known) : v)),
      };
    }
    case 'Conv2D': {
      const filters = positiveInt(config.filters);
      const kernel = ints(config.kernel_size, 2, [3, 3]);
      const strides = ints(config.strides, 2, [1, 1]);
      if (filters === undefined || !kernel || !strides || shape.length !== 3) return undefined;
      const channels = config.data_format === 'channels_first' ? shape[0] : shape[2];
      const out = windowed(shape, config, kernel, strides, filters);
      if (!out) return undefined;
      return { params: kernel[0] * kernel[1] * channels * filters + (useBias ? filters : 0), shape: out };
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const pool = ints(config.pool_size, 2, [2, 2]);
      const strides = pool && ints(config.strides, 2, pool);
      if (!pool || !strides || shape.length !== 3) return undefined;
      const channels = config.data_format === 'channels_first' ? shape[0] : shape[2];
      const out = windowed(shape, { ...config, dilation_rate: undefined }, pool, strides, channels);
      return out ? { params: 0, shape: out } : undefined;
    }
    case 'GlobalMaxPooling2D':
    case 'GlobalAveragePooling2D': {
      if (shape.length !== 3) return undefined;
      return { params: 0, shape: [config.data_format === 'channels_first' ? shape[0] : shape[2]] };
    }
    case 'BatchNormalization': {
      if (shape.length === 0) return undefined;
      const axis = typeof config.axis === 'number' ? config.axis : -1;
      const at = axis < 0 ? shape.length + 1 + axis : axis;
      const size = shape[at - 1];
      if (size === undefined) return undefined;
      // gamma, beta, moving mean and moving variance
      return { params: 4 * size, shape };
    }
    case 'Embedding': {
      const inputDim = positiveInt(config.input_dim);
      const outputDim = positiveInt(config.output_dim);
      if (inputDim === undefined || outputDim === undefined) return undefined;
      return { params: inputDim * outputDim, shape: [...shape, outputDim] };
    }
    default:
      return undefined;
  }
}

/** The input shape (without the batch axis) a layer's config declares, if any. */
function declaredInput(config: Record<string, unknown>): Shape | undefined {
  const batch = config.batch_input_shape ?? config.batch_shape;
  const shape = Array.isArray(batch) ? batch.slice(1) : config.input_shape;
  if (!Array.isArray(shape) || shape.length === 0) return undefined;
  return shape.every((v) => Number.isSafeInteger(v) && v > 0) ? (shape as number[]) : undefined;
}

/**
 * The number of weights a Sequential topology of known layers builds, counted from its JSON; or
 * undefined for a topology this counter cannot follow (a functional model, a layer it does not
 * know, a dimension left open), which is then built and counted as built.
 */
export function topologyParamCount(topology: Record<string, unknown>): number | undefined {
  if (topology.class_name !== 'Sequential') return undefined;
  const config = topology.config;
  const layers = Array.isArray(config)
    ? config
    : config && typeof config === 'object'
      ? (config as { layers?: unknown }).layers
      : undefined;
  if (!Array.isArray(layers) || layers.length === 0) return undefined;
  let shape: Shape | undefined;
  let total = 0;
  for (const entry of layers) {
    if (!entry || typeof entry !== 'object') return undefined;
    const { class_name: className, config: layerConfig } = entry as {
      class_name?: unknown;
      config?: unknown;
    };
    if (typeof className !== 'string' || !layerConfig || typeof layerConfig !== 'object') return undefined;
    const c = layerConfig as Record<string, unknown>;
    shape ??= declaredInput(c);
    if (!shape) return undefined;
    const next = layer(className, c, shape);
    if (!next) return undefined;
    total += next.params;
    shape = next.shape;
    if (!Number.isFinite(total)) return Number.POSITIVE_INFINITY;
  }
  return total;
}

/** Config keys whose numbers size a layer's weights or activations. */
const SIZING_KEYS = new Set([
  'batch_input_shape',
  'batch_shape',
  'input_shape',
  'units',
  'filters',
  'kernel_size',
  'target_shape',
  'input_dim',
  'output_dim',
  'depth_multiplier',
  'n',
  'size',
]);

/**
 * The largest number under a sizing key anywhere in the topology. A topology that cannot be
 * counted from its JSON is still refused when one of its dimensions is absurd on its face.
 */
export function largestDimension(node: unknown, depth = 0, sizing = false): number {
  if (depth > 64) return 0;
  if (typeof node === 'number') return sizing ? Math.abs(node) : 0;
  if (node === null || typeof node !== 'object') return 0;
  let largest = 0;
  const entries = Array.isArray(node) ? node.map((v) => ['', v] as const) : Object.entries(node);
  for (const [key, value] of entries) {
    const here = largestDimension(value, depth + 1, sizing || SIZING_KEYS.has(key));
    if (here > largest) largest = here;
  }
  return largest;
}

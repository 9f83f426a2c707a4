// Inputs as JSON for regression files: the values fuzz targets take (binary, typed arrays, NaN,
// -0, undefined, null-prototype objects) survive a trip through a file exactly.

/** A tagged value: `{"$": tag, ...}`. Plain objects holding a `$` key are tagged too. */
type Tagged = { $: string; [key: string]: unknown };

const TYPED_ARRAYS = {
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
} as const;
type TypedArrayName = keyof typeof TYPED_ARRAYS;

function base64Of(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** `value` as a JSON-safe value; `fromJsonSafe` is its reverse. Throws TypeError on a class it does not know. */
export function toJsonSafe(value: unknown): unknown {
  switch (typeof value) {
    case 'undefined':
      return { $: 'undefined' };
    case 'number':
      if (Number.isFinite(value) && !Object.is(value, -0)) return value;
      return { $: 'number', value: Object.is(value, -0) ? '-0' : String(value) };
    case 'bigint':
      return { $: 'bigint', value: value.toString() };
    case 'string':
    case 'boolean':
      return value;
    case 'object':
      break;
    default:
      throw new TypeError(`cannot save a ${typeof value} in a regression case`);
  }
  if (value === null) return null;
  if (Buffer.isBuffer(value)) return { $: 'buffer', base64: base64Of(value) };
  if (value instanceof Uint8Array) return { $: 'bytes', base64: base64Of(value) };
  for (const [name, Ctor] of Object.entries(TYPED_ARRAYS)) {
    if (value instanceof Ctor) return { $: name, base64: base64Of(value) };
  }
  if (Array.isArray(value)) {
    if (Object.keys(value).length !== value.length) throw new TypeError('cannot save a sparse array');
    return value.map(toJsonSafe);
  }
  if (value instanceof Date) return { $: 'date', value: value.getTime() };
  if (!isPlainObject(value)) {
    throw new TypeError(`cannot save a ${Object.prototype.toString.call(value)} in a regression case`);
  }
  const entries = Object.keys(value).map((k) => [k, toJsonSafe((value as Record<string, unknown>)[k])]);
  const nullPrototype = Object.getPrototypeOf(value) === null;
  // Keys that would read as a tag, or that JSON.parse would turn into something else, keep their entries form.
  if (nullPrototype || entries.some(([k]) => k === '$' || k === '__proto__')) {
    return { $: 'object', nullPrototype, entries };
  }
  return Object.fromEntries(entries);
}

function bytesOf(t: Tagged): Buffer {
  return Buffer.from(String(t.base64), 'base64');
}

/** Reverse of `toJsonSafe`. */
export function fromJsonSafe(json: unknown): unknown {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map(fromJsonSafe);
  const t = json as Tagged;
  if (typeof t.$ !== 'string') {
    return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, fromJsonSafe(v)]));
  }
  switch (t.$) {
    case 'undefined':
      return undefined;
    case 'number':
      return t.value === '-0' ? -0 : Number(t.value);
    case 'bigint':
      return BigInt(String(t.value));
    case 'buffer':
      return bytesOf(t);
    case 'bytes':
      return Uint8Array.from(bytesOf(t));
    case 'date':
      return new Date(Number(t.value));
    case 'object': {
      const out: Record<string, unknown> = t.nullPrototype ? Object.create(null) : {};
      // defineProperty, not assignment: a "__proto__" key must stay an own key.
      for (const [k, v] of t.entries as [string, unknown][]) {
        Object.defineProperty(out, k, {
          value: fromJsonSafe(v),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    default: {
      const Ctor = TYPED_ARRAYS[t.$ as TypedArrayName];
      if (!Ctor) throw new TypeError(`unknown tag "${t.$}" in a regression case`);
      const bytes = bytesOf(t);
      const aligned = new Uint8Array(bytes.length);
      aligned.set(bytes);
      return new Ctor(aligned.buffer, 0, bytes.length / Ctor.BYTES_PER_ELEMENT);
    }
  }
}

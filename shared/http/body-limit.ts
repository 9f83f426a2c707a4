// Reads HTTP request bodies under a byte limit, whether they come with a Content-Length or
// chunked, for the operator API and the agent's inference API (both Hono on @hono/node-server).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Context, MiddlewareHandler } from 'hono';
import { LoomError } from '../errors/index.ts';

/** Defaults of `BodyLimitOptions`. */
export const BODY_LIMIT_DEFAULTS = {
  /** Bytes of a refused body read and dropped after the 413 went out, before the connection closes. */
  drainBytes: 1024 * 1024,
  /** How long after the 413 went out a refused body is read and dropped, before the connection closes. */
  drainMs: 500,
} as const;

/** Options of `bodyLimit`. */
export interface BodyLimitOptions {
  /** Largest body accepted, in bytes. Required. */
  maxBytes: number;
  /** Default `BODY_LIMIT_DEFAULTS.drainBytes` (1 MiB). */
  drainBytes?: number;
  /** Default `BODY_LIMIT_DEFAULTS.drainMs` (500 ms). */
  drainMs?: number;
}

interface BodyState {
  maxBytes: number;
  drainBytes: number;
  drainMs: number;
  body?: Promise<Uint8Array>;
}

// Keyed by the request's context: one state per request, gone with it.
const states = new WeakMap<Context, BodyState>();

function tooLarge(maxBytes: number): LoomError {
  return new LoomError('LOOM_ERR_FRAME_TOO_LARGE', `request body is larger than ${maxBytes} bytes`);
}

/** The Node request and response behind `c` when @hono/node-server serves it, else undefined. */
interface NodeBindings {
  incoming: IncomingMessage;
  outgoing?: ServerResponse;
}

function nodeBindings(c: Context): NodeBindings | undefined {
  const env = c.env as { incoming?: unknown; outgoing?: unknown } | undefined;
  // Tests pass hand-made objects as `env.incoming`; only a real stream is read from.
  if (!(env?.incoming instanceof Readable)) return undefined;
  const outgoing = env.outgoing as ServerResponse | undefined;
  return { incoming: env.incoming as IncomingMessage, ...(outgoing ? { outgoing } : {}) };
}

/**
 * Caps the body of every request the middleware covers at `maxBytes`: a Content-Length above it
 * is refused at once, unread, and a chunked body is refused (in `readBody`) as soon as it
 * passes the limit, so no more than `maxBytes` is ever held. A refusal is a LoomError
 * LOOM_ERR_FRAME_TOO_LARGE (413), thrown to the app's error handler. The rest of a refused
 * body is read and dropped for a moment after the 413 went out (up to `drainBytes`, at most
 * `drainMs`), so the client sees the answer rather than a reset; a body that ends in that time
 * leaves the connection usable for the next request, a longer one has its connection closed.
 *
 * The body is read with `readBody`, never by building a new `Request`: under @hono/node-server
 * with `overrideGlobalObjects: false` the platform's `Request` cannot be built from the
 * server's lightweight request, which is what made hono's `bodyLimit` fail chunked bodies.
 * @param options.drainBytes default 1 MiB
 * @param options.drainMs default 500 ms
 */
export function bodyLimit(options: BodyLimitOptions): MiddlewareHandler {
  const maxBytes = options.maxBytes;
  const drainBytes = options.drainBytes ?? BODY_LIMIT_DEFAULTS.drainBytes;
  const drainMs = options.drainMs ?? BODY_LIMIT_DEFAULTS.drainMs;
  for (const [name, value] of Object.entries({ maxBytes, drainBytes, drainMs })) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new TypeError(`${name} must be a non-negative integer, got ${value}`);
    }
  }
  return async (c, next) => {
    const state: BodyState = { maxBytes, drainBytes, drainMs };
    states.set(c, state);
    const length = c.req.header('content-length');
    // With Transfer-Encoding the Content-Length means nothing (RFC 9112 §6.3); the count decides.
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(length) > maxBytes) {
        dropRest(nodeBindings(c), state);
        throw tooLarge(maxBytes);
      }
    }
    await next();
  };
}

/**
 * The whole request body, read once (later calls share the first read) under the limit set by
 * `bodyLimit`, which must cover the route (a TypeError otherwise). Rejects with
 * LOOM_ERR_FRAME_TOO_LARGE past the limit, and LOOM_ERR_INVALID_ARGUMENT when the client
 * stops before the body ends.
 */
export function readBody(c: Context): Promise<Uint8Array> {
  const state = states.get(c);
  if (!state) throw new TypeError('readBody needs the bodyLimit middleware in front of the route');
  state.body ??= readLimited(c, state);
  return state.body;
}

/** `readBody` decoded as UTF-8 (invalid sequences become U+FFFD, as `Request.text()` does). */
export async function readBodyText(c: Context): Promise<string> {
  return new TextDecoder().decode(await readBody(c));
}

/**
 * The same limit as `bodyLimit` + `readBody` for a handler on Node's own request and response
 * (no Hono context): a Content-Length over `maxBytes` is refused unread, a chunked body as soon
 * as it passes the limit, and the rest of a refused body is drained after the answer as
 * `bodyLimit` does. Rejects with LOOM_ERR_FRAME_TOO_LARGE (413) or LOOM_ERR_INVALID_ARGUMENT
 * (the body ended early).
 * @param options.drainBytes default 1 MiB
 * @param options.drainMs default 500 ms
 */
export function readNodeBody(
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  options: BodyLimitOptions,
): Promise<Uint8Array> {
  const state: BodyState = {
    maxBytes: options.maxBytes,
    drainBytes: options.drainBytes ?? BODY_LIMIT_DEFAULTS.drainBytes,
    drainMs: options.drainMs ?? BODY_LIMIT_DEFAULTS.drainMs,
  };
  const node = { incoming, outgoing };
  const length = incoming.headers['content-length'];
  if (length !== undefined && incoming.headers['transfer-encoding'] === undefined) {
    if (Number(length) > state.maxBytes) {
      dropRest(node, state);
      return Promise.reject(tooLarge(state.maxBytes));
    }
  }
  return readIncoming(node, state);
}

function readLimited(c: Context, state: BodyState): Promise<Uint8Array> {
  const node = nodeBindings(c);
  if (node) return readIncoming(node, state);
  const stream = c.req.raw.body;
  return stream ? readStream(stream, state.maxBytes) : Promise.resolve(new Uint8Array(0));
}

function bodyEndedEarly(cause?: unknown): LoomError {
  return new LoomError('LOOM_ERR_INVALID_ARGUMENT', 'the request body ended before it was complete', {
    cause,
  });
}

/** Reads the Node request directly: fewer copies than a web stream, and it can be drained after. */
function readIncoming(node: NodeBindings, state: BodyState): Promise<Uint8Array> {
  const incoming = node.incoming;
  if (incoming.readableEnded) return Promise.resolve(new Uint8Array(0));
  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > state.maxBytes) {
        stop();
        chunks.length = 0;
        dropRest(node, state);
        reject(tooLarge(state.maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      stop();
      reject(bodyEndedEarly(err));
    };
    const onClose = (): void => {
      if (!incoming.readableEnded) onError(new Error('connection closed'));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}

async function readStream(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let step: Awaited<ReturnType<typeof reader.read>>;
    try {
      step = await reader.read();
    } catch (err) {
      throw bodyEndedEarly(err);
    }
    if (step.done) break;
    size += step.value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(maxBytes);
    }
    chunks.push(step.value);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Reads and drops the rest of a refused body. Closing at once would make the kernel answer the
 * bytes still arriving with a reset, which can destroy the 413 before the client reads it; so
 * the connection lingers, after the response went out, for `drainMs` or `drainBytes`, whichever
 * comes first. A body that ends in that time leaves the connection usable (keep-alive).
 */
function dropRest(node: NodeBindings | undefined, state: BodyState): void {
  if (!node || node.incoming.readableEnded || node.incoming.destroyed) return;
  const { incoming, outgoing } = node;
  let dropped = 0;
  let answered = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (): void => {
    clearTimeout(timer);
    incoming.off('data', onData);
    incoming.off('end', finish);
    incoming.off('error', finish);
    incoming.off('close', finish);
    outgoing?.off('finish', onAnswered);
  };
  const close = (): void => {
    finish();
    incoming.socket?.destroy();
  };
  const onData = (chunk: Buffer): void => {
    if (!answered) return;
    dropped += chunk.length;
    if (dropped > state.drainBytes) close();
  };
  const onAnswered = (): void => {
    answered = true;
    timer = setTimeout(close, state.drainMs);
    timer.unref();
  };
  incoming.on('data', onData);
  incoming.once('end', finish);
  incoming.once('error', finish);
  incoming.once('close', finish);
  if (!outgoing || outgoing.writableFinished) onAnswered();
  else outgoing.once('finish', onAnswered);
  incoming.resume();
}

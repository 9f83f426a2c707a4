// The agent's link to the coordinator: a mutual-TLS WebSocket that says hello, answers
// heartbeats, reconnects with jittered exponential backoff, and hands frames to the agent.
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { ERROR_CODES, LoomError, type LoomErrorCode } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import {
  CLOSE_CODES,
  createMessage,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_PAYLOAD_BYTES,
  decodeMessage,
  encodeFrames,
  encodeMessage,
  type HelloBody,
  type Message,
  type MessageBodies,
  type MessageType,
  PayloadAssembler,
  REFUSAL_CODE_HEADER,
  type WelcomeBody,
} from '../../shared/protocol/index.ts';
import { type BackoffOptions, backoffDelay } from './backoff.ts';

/** Fills a frame's masking key with zeros (see connect). */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

export interface CoordinatorConnectionOptions {
  /** wss://host:port/v1/agent */
  url: string;
  certPem: string;
  keyPem: string;
  /** The pinned Loom CA: the only trust anchor for the coordinator's certificate. */
  caPem: string;
  /** Builds the hello body at each (re)connect, so it lists the models held now. */
  hello: () => HelloBody;
  backoff?: BackoffOptions;
  /** Wait after being replaced by another connection with this identity (default 30 s, doubling to 10 min). */
  replacedBackoff?: { initialMs?: number; maxMs?: number };
  /** Largest accepted frame (default DEFAULT_MAX_FRAME_BYTES, 64 MiB). */
  maxPayloadBytes?: number;
  /** Largest payload (model weights) accepted in chunks (default DEFAULT_MAX_PAYLOAD_BYTES, 1 GiB). */
  maxChunkedPayloadBytes?: number;
  log: Logger;
}

export interface ConnectionEvents {
  connected: [WelcomeBody];
  disconnected: [{ code: number; reason: string }];
  message: [Message];
  /**
   * The coordinator refused this agent for good; no more retries. LOOM_ERR_CERT_REVOKED when
   * the coordinator said it is revoked (close code 4003, or a refused upgrade naming that code),
   * LOOM_ERR_UNAUTHORIZED for other refused upgrades (unknown agent, superseded certificate),
   * LOOM_ERR_PROTOCOL_VERSION for a protocol mismatch.
   */
  rejected: [LoomError];
  /**
   * Another connection with this agent's identity took over (close code 4005): a copy of the
   * identity runs elsewhere. This side waits `retryInMs` before it tries again.
   */
  replaced: [{ retryInMs: number; times: number }];
}

function toCode(code: string): LoomErrorCode {
  return code in ERROR_CODES ? (code as LoomErrorCode) : 'LOOM_ERR_INTERNAL';
}

/** Defaults of `replacedBackoff`: 30 s, doubling each time up to 10 minutes. */
export const REPLACED_BACKOFF = { initialMs: 30_000, maxMs: 600_000 } as const;

/** Close codes after which retrying cannot help. */
const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CLOSE_CODES.REVOKED,
  CLOSE_CODES.UNSUPPORTED_VERSION,
]);

function countBits(bitmap: Uint8Array): number {
  let n = 0;
  for (const byte of bitmap) for (let b = byte; b; b &= b - 1) n++;
  return n;
}

export class CoordinatorConnection extends EventEmitter<ConnectionEvents> {
  private ws?: WebSocket;
  private attempt = 0;
  /** Connections in a row that ended because another one with this identity took over. */
  private replacedTimes = 0;
  private stopped = true;
  private reconnectTimer?: NodeJS.Timeout;
  private livenessTimer?: NodeJS.Timeout;
  private welcome?: WelcomeBody;
  /** The certificate the current socket presented, to tell whether a renewal still needs a reconnect. */
  private wsCertPem?: string;
  private readonly log: Logger;
  /** Chunked payloads (model weights) from the coordinator, assembled per connection. */
  private payloads: PayloadAssembler;
  private readonly replies = new Map<
    string,
    { resolve: (m: Message) => void; reject: (e: LoomError) => void }
  >();

  constructor(private readonly opts: CoordinatorConnectionOptions) {
    super();
    this.log = opts.log;
    this.payloads = this.newAssembler();
  }

  get connected(): boolean {
    return this.welcome !== undefined && this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Closes the link and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.livenessTimer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000, 'agent stopping');
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2_000).unref();
    });
  }

  /** Sends a frame; throws LOOM_ERR_NETWORK when not connected (the caller decides whether to keep it). */
  send<T extends MessageType>(type: T, body: MessageBodies[T], replyTo?: string): void {
    if (!this.connected || !this.ws)
      throw new LoomError('LOOM_ERR_NETWORK', 'not connected to the coordinator');
    this.sendFrames(createMessage(type, body, replyTo) as Message);
  }

  /** A message's frames: a large payload first, in chunks of the size the coordinator asked for. */
  private sendFrames(msg: Message): void {
    const chunkBytes = this.welcome?.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    for (const frame of encodeFrames(msg, { chunkBytes })) this.ws!.send(frame);
  }

  /**
   * Sends a frame and resolves with the coordinator's reply (the frame whose replyTo is its id).
   * An `error` reply rejects with its code; so do a disconnect and `timeoutMs` (default 30 s).
   */
  request<T extends MessageType>(type: T, body: MessageBodies[T], timeoutMs = 30_000): Promise<Message> {
    if (!this.connected || !this.ws) {
      return Promise.reject(new LoomError('LOOM_ERR_NETWORK', 'not connected to the coordinator'));
    }
    const msg = createMessage(type, body) as Message;
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(msg.id);
        reject(new LoomError('LOOM_ERR_NETWORK', `no reply to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.replies.set(msg.id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.sendFrames(msg);
    });
  }

  /** Uses a new client certificate from the next connection on (after a renewal). */
  setCredentials(certPem: string, keyPem: string): void {
    this.opts.certPem = certPem;
    this.opts.keyPem = keyPem;
  }

  /**
   * Closes the current connection and connects again at once, to present the credentials given
   * to `setCredentials`. Does nothing when the current connection already presents them (it was
   * opened after the change).
   */
  reconnectNow(): void {
    if (this.stopped || !this.ws || this.wsCertPem === this.opts.certPem) return;
    this.attempt = 0;
    this.ws.close(1000, 'reconnecting with renewed credentials');
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.opts.url, {
      cert: this.opts.certPem,
      key: this.opts.keyPem,
      ca: [this.opts.caPem],
      rejectUnauthorized: true,
      maxPayload: this.opts.maxPayloadBytes ?? DEFAULT_MAX_FRAME_BYTES,
      handshakeTimeout: 15_000,
      // RFC 6455 masks a client's frames so that script in a browser cannot shape the bytes a
      // proxy on the path reads as HTTP. Inside TLS no proxy reads them, and this client is not a
      // browser: a zero mask, which both ends skip, saves XOR-ing every update twice in
      // JavaScript (about 10 ms per 10 MB on each side).
      ...(this.opts.url.startsWith('wss:') ? { generateMask: zeroMask } : {}),
    });
    this.ws = ws;
    this.wsCertPem = this.opts.certPem;
    this.welcome = undefined;
    // Payloads finished but never named died with their message; partial ones are kept.
    this.payloads.clearDone();

    ws.on('open', () => {
      // What arrived of a transfer the last connection cut is kept: the coordinator sends the rest.
      const partial = this.payloads.partials();
      const hello = { ...this.opts.hello(), ...(partial.length > 0 ? { partial } : {}) };
      if (partial.length > 0) {
        this.log.info('resuming transfers', {
          payloads: partial
            .map((p) => `${p.payload.slice(0, 12)} (${countBits(p.have)}/${p.count} chunks)`)
            .join(', '),
        });
      }
      ws.send(encodeMessage(createMessage('hello', hello)));
    });
    ws.on('ping', () => this.armLiveness());
    ws.on('message', (data, isBinary) => {
      let msg: Message;
      try {
        if (!isBinary) throw new LoomError('LOOM_ERR_PROTOCOL', 'text frame');
        msg = decodeMessage(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), {
          payloads: (ref) => this.payloads.take(ref),
        });
        if (msg.type === 'chunk') {
          this.payloads.accept(msg.body);
          return;
        }
      } catch (err) {
        this.log.warn('malformed frame from the coordinator', { error: (err as Error).message });
        // Said back once connected, so the coordinator knows what was refused (a chunk whose
        // hash is wrong, say) instead of waiting for an answer that will not come.
        if (this.welcome && ws.readyState === WebSocket.OPEN) {
          const code = err instanceof LoomError ? err.code : 'LOOM_ERR_PROTOCOL';
          ws.send(
            encodeMessage(createMessage('error', { code, message: (err as Error).message.slice(0, 4096) })),
          );
        }
        return;
      }
      if (!this.welcome) {
        if (msg.type === 'welcome') {
          this.welcome = msg.body;
          this.attempt = 0;
          this.armLiveness();
          this.log.info('connected to the coordinator', {
            url: this.opts.url,
            agent: msg.body.agentId,
            protocol: msg.body.protocolVersion,
          });
          this.emit('connected', msg.body);
        } else if (msg.type === 'error') {
          this.log.error('coordinator refused the hello', { code: msg.body.code, message: msg.body.message });
        }
        return;
      }
      const pending = msg.replyTo ? this.replies.get(msg.replyTo) : undefined;
      if (pending && msg.replyTo) {
        this.replies.delete(msg.replyTo);
        if (msg.type === 'error') pending.reject(new LoomError(toCode(msg.body.code), msg.body.message));
        else pending.resolve(msg);
        return;
      }
      this.emit('message', msg);
    });
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      if (status === 401 || status === 403) {
        // Only the coordinator's own word makes this a revocation: a 403 can also mean an unknown
        // agent or a certificate superseded by a renewal (or come from something in between).
        const said = res.headers[REFUSAL_CODE_HEADER];
        const revoked = status === 403 && said === 'LOOM_ERR_CERT_REVOKED';
        const err = new LoomError(
          revoked ? 'LOOM_ERR_CERT_REVOKED' : 'LOOM_ERR_UNAUTHORIZED',
          `the coordinator refused this agent (HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}${
            typeof said === 'string' ? `, ${said.slice(0, 64)}` : ''
          })`,
        );
        this.log.error(err.message);
        this.stopped = true;
        this.emit('rejected', err);
      } else {
        this.log.warn('coordinator answered the upgrade with HTTP status', { status });
      }
      ws.terminate();
    });
    ws.on('error', (err) => {
      this.log.warn('coordinator connection error', { error: err.message });
    });
    ws.on('close', (code, reasonBuf) => {
      clearTimeout(this.livenessTimer);
      const wasConnected = this.welcome !== undefined;
      this.welcome = undefined;
      const reason = reasonBuf.toString();
      for (const [id, pending] of this.replies) {
        this.replies.delete(id);
        pending.reject(new LoomError('LOOM_ERR_NETWORK', 'disconnected before the reply arrived'));
      }
      if (wasConnected) {
        this.log.warn('disconnected from the coordinator', { code, reason });
        this.emit('disconnected', { code, reason });
      }
      if (FATAL_CLOSE_CODES.has(code)) {
        const err = new LoomError(
          code === CLOSE_CODES.REVOKED ? 'LOOM_ERR_CERT_REVOKED' : 'LOOM_ERR_PROTOCOL_VERSION',
          `the coordinator closed the connection for good: ${reason || code}`,
        );
        this.log.error(err.message);
        this.stopped = true;
        this.emit('rejected', err);
        return;
      }
      if (code === CLOSE_CODES.REPLACED) {
        this.backOffReplaced();
        return;
      }
      this.replacedTimes = 0;
      this.scheduleReconnect();
    });
  }

  private newAssembler(): PayloadAssembler {
    const max = this.opts.maxChunkedPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    // A deploy and a task may be in flight together: room for two payloads, kept across
    // connections so a cut transfer resumes.
    return new PayloadAssembler({ maxPayloadBytes: () => max, maxPending: 2, resumable: true });
  }

  /**
   * A second process with this identity (a cloned VM, or two agents on one data dir) made the
   * coordinator replace this connection. Reconnecting at once would take the connection back and
   * the two would fight forever; instead this side says why and waits, longer each time.
   */
  private backOffReplaced(): void {
    if (this.stopped) return;
    this.replacedTimes++;
    const { initialMs, maxMs } = { ...REPLACED_BACKOFF, ...this.opts.replacedBackoff };
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this.replacedTimes - 1, 30));
    this.log.warn(
      'another process with this agent identity connected to the coordinator, which dropped this connection ' +
        '(a cloned VM, or a second agent on this data dir?); this one waits before it tries again. ' +
        'Stop the copy, or re-enroll it with its own identity',
      { retryInS: Math.round(delay / 1000), times: this.replacedTimes },
    );
    this.emit('replaced', { retryInMs: delay, times: this.replacedTimes });
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt++, this.opts.backoff);
    this.log.info('reconnecting', { inMs: delay, attempt: this.attempt });
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** A coordinator that stops pinging for three intervals is presumed gone. */
  private armLiveness(): void {
    clearTimeout(this.livenessTimer);
    const interval = this.welcome?.heartbeatIntervalMs ?? 10_000;
    this.livenessTimer = setTimeout(() => {
      this.log.warn('no heartbeat from the coordinator; reconnecting');
      this.ws?.terminate();
    }, interval * 3);
    this.livenessTimer.unref();
  }
}

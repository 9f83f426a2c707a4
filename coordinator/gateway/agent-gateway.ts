// The agent gateway: a WSS server that requires client certificates from the Loom CA, checks
// revocation at every connection, negotiates the protocol in `hello`, keeps heartbeats, and
// exposes connected agents to the round engine as an AgentPool.
import { EventEmitter } from 'node:events';
import { createServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type WebSocket, WebSocketServer } from 'ws';
import { isLoomError, LoomError, type LoomErrorCode } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import {
  CLOSE_CODES,
  createMessage,
  type DatasetSummary,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  decodeMessage,
  encodeMessage,
  type Message,
  type PayloadRef,
  PROTOCOL_VERSIONS,
  REFUSAL_CODE_HEADER,
  type ServingHealthBody,
} from '../../shared/protocol/index.ts';
import type {
  AgentClaims,
  AgentPool,
  EvaluateOutcome,
  EvaluateTask,
  TrainOutcome,
  TrainTask,
} from '../rounds/index.ts';
import { AgentSession, type AgentSessionInfo } from './agent-session.ts';

/**
 * The decision on a client certificate that passed the TLS handshake. A refusal's `code` is
 * sent in the `REFUSAL_CODE_HEADER` response header.
 */
export type AuthorizeResult =
  | { ok: true }
  | { ok: false; status: number; reason: string; code?: LoomErrorCode };

export interface AgentGatewayOptions {
  /** PEM of the Loom CA: the only trust anchor for client certificates. */
  caCertPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Checked at every connection (after the TLS handshake, before the upgrade). */
  authorize: (identity: { agentId: string; certSerial: string }) => Promise<AuthorizeResult>;
  /**
   * Checked again, synchronously, when `hello` arrives: closes the window between `authorize`
   * and a revocation that lands while the connection is being set up.
   */
  isRevoked?: (identity: { agentId: string; certSerial: string }) => boolean;
  /** Signs a renewal CSR for a connected agent (its identity is the connection's certificate). */
  renewCertificate?: (agentId: string, csrPem: string) => Promise<{ certificate: string; notAfter: Date }>;
  /** Ping interval; an agent that misses one full interval is disconnected (default 10 000 ms). */
  heartbeatIntervalMs?: number;
  /** Time allowed between the upgrade and `hello` (default 10 000 ms). */
  helloTimeoutMs?: number;
  /** Largest accepted frame (default DEFAULT_MAX_FRAME_BYTES, 64 MiB). */
  maxPayloadBytes?: number;
  /** Payloads larger than this travel as chunks of at most this size, both ways (default 8 MiB). */
  chunkBytes?: number;
  log: Logger;
}

export interface GatewayEvents {
  online: [AgentSessionInfo];
  offline: [{ agentId: string; reason: string }];
  /** `activation`: the ack answers an `activate` (a stored version), not a `deploy`. */
  'deploy-ack': [
    { agentId: string; name: string; version: number; ok: boolean; error?: string; activation: boolean },
  ];
  /** An `error` frame from an agent: something the coordinator sent was refused. */
  'agent-error': [{ agentId: string; code: string; message: string }];
  /** A serving-health report, validated by the codec (bounded counts, consistent histogram). */
  'serving-health': [{ agentId: string; report: ServingHealthBody }];
}

export const GATEWAY_DEFAULTS = {
  host: '0.0.0.0',
  port: 0,
  heartbeatIntervalMs: 10_000,
  helloTimeoutMs: 10_000,
  maxPayloadBytes: DEFAULT_MAX_FRAME_BYTES,
  chunkBytes: DEFAULT_CHUNK_BYTES,
} as const;

/** Payloads the gateway sends above this size go as chunks shared by every receiver (see SessionFraming). */
const SHARED_PAYLOAD_BYTES = 64 * 1024;

/** Two replacements of one agent's connection within this window look like two processes. */
const DUPLICATE_WINDOW_MS = 60_000;

export class AgentGateway extends EventEmitter<GatewayEvents> implements AgentPool {
  private readonly opts: Required<Omit<AgentGatewayOptions, 'renewCertificate' | 'isRevoked'>> &
    Pick<AgentGatewayOptions, 'renewCertificate' | 'isRevoked'>;
  /** Connections past the upgrade that have not said hello yet, by agent id. */
  private readonly handshaking = new Map<string, Set<WebSocket>>();
  private readonly https: HttpsServer;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<string, AgentSession>();
  /** When each agent's live connection was last replaced by another (for the duplicate warning). */
  private readonly replacements = new Map<string, number[]>();
  private readonly warnedDuplicates = new Set<string>();
  /** Chunk frames of payloads sent to many agents (a round's weights), made once per payload. */
  private readonly chunkCache = new WeakMap<Uint8Array, { ref: PayloadRef; frames: Buffer[] }>();
  private heartbeat?: NodeJS.Timeout;
  private lastHeartbeat = 0;
  private readonly log: Logger;

  constructor(options: AgentGatewayOptions) {
    super();
    this.opts = { ...GATEWAY_DEFAULTS, ...options };
    this.log = options.log;
    this.https = createServer({
      cert: this.opts.serverCertPem,
      key: this.opts.serverKeyPem,
      ca: [this.opts.caCertPem],
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    });
    this.https.on('tlsClientError', (err, socket) => {
      this.log.warn('TLS handshake refused', { remote: socket.remoteAddress, reason: err.message });
    });
    this.https.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket upgrade required\n');
    });
    this.wss = new WebSocketServer({
      server: this.https,
      path: '/v1/agent',
      maxPayload: this.opts.maxPayloadBytes,
      verifyClient: (info, done) => {
        const identity = peerIdentity(info.req.socket as TLSSocket);
        if (!identity) {
          done(false, 401, 'client certificate required');
          return;
        }
        this.opts
          .authorize(identity)
          .then((result) => {
            if (result.ok) done(true);
            else {
              this.log.warn('agent refused', { agent: identity.agentId, reason: result.reason });
              done(
                false,
                result.status,
                result.reason,
                result.code ? { [REFUSAL_CODE_HEADER]: result.code } : undefined,
              );
            }
          })
          .catch((err: unknown) => {
            this.log.error('agent authorization failed', { agent: identity.agentId, error: String(err) });
            done(false, 500, 'authorization failed');
          });
      },
    });
    this.wss.on('connection', (ws, req) => this.onConnection(ws, req.socket as TLSSocket));
  }

  /** Starts listening; resolves with the bound port. */
  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      // ws re-emits the server's errors on the WebSocketServer, where an unhandled one (a port
      // already taken) would crash the process instead of rejecting here.
      const onError = (err: Error): void => {
        this.https.off('error', onError);
        this.wss.off('error', onError);
        reject(err);
      };
      this.https.on('error', onError);
      this.wss.on('error', onError);
      this.https.listen(this.opts.port, this.opts.host, () => {
        this.https.off('error', onError);
        this.wss.off('error', onError);
        resolve();
      });
    });
    this.lastHeartbeat = Date.now();
    this.heartbeat = setInterval(() => this.tickHeartbeat(), this.opts.heartbeatIntervalMs);
    this.heartbeat.unref();
    return this.port;
  }

  get port(): number {
    return (this.https.address() as AddressInfo).port;
  }

  /** Closes every agent connection (close code 1001) and the server. */
  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const s of this.sessions.values())
      this.endSession(s, CLOSE_CODES.GOING_AWAY, 'coordinator shutting down');
    // Connections without a session (no hello yet, or already closing) hold wss.close() open too.
    for (const ws of this.wss.clients) {
      if (ws.readyState === ws.OPEN) ws.close(CLOSE_CODES.GOING_AWAY, 'coordinator shutting down');
      setTimeout(() => ws.terminate(), 2_000).unref();
    }
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.https.closeAllConnections?.();
    await new Promise<void>((resolve) => this.https.close(() => resolve()));
  }

  // --- AgentPool -------------------------------------------------------------------------

  onlineAgentIds(): string[] {
    return [...this.sessions.keys()];
  }

  datasetOf(agentId: string): DatasetSummary | undefined {
    return this.sessions.get(agentId)?.info.dataset;
  }

  claimsOf(agentId: string): AgentClaims | undefined {
    const info = this.sessions.get(agentId)?.info;
    if (!info) return undefined;
    return {
      software: {
        loom: info.agentVersion,
        ...(info.runtime === undefined ? {} : { node: info.runtime }),
        ...(info.training === undefined ? {} : { training: info.training }),
      },
      ...(info.dataFingerprint === undefined ? {} : { dataFingerprint: info.dataFingerprint }),
    };
  }

  runTrainTask(agentId: string, task: TrainTask): Promise<TrainOutcome> {
    const session = this.sessions.get(agentId);
    if (!session) {
      return Promise.reject(
        new LoomError('LOOM_ERR_AGENT_DISCONNECTED', `agent ${agentId} is not connected`),
      );
    }
    return session.runTrainTask(task);
  }

  runEvaluateTask(agentId: string, task: EvaluateTask): Promise<EvaluateOutcome> {
    const session = this.sessions.get(agentId);
    if (!session) {
      return Promise.reject(
        new LoomError('LOOM_ERR_AGENT_DISCONNECTED', `agent ${agentId} is not connected`),
      );
    }
    return session.runEvaluateTask(task);
  }

  cancelTask(agentId: string, taskId: string): void {
    this.sessions.get(agentId)?.cancelTask(taskId);
  }

  onAgentOnline(listener: (agentId: string) => void): () => void {
    const fn = (info: AgentSessionInfo): void => listener(info.agentId);
    this.on('online', fn);
    return () => this.off('online', fn);
  }

  // --- other operations ------------------------------------------------------------------

  session(agentId: string): AgentSession | undefined {
    return this.sessions.get(agentId);
  }

  sessionInfos(): AgentSessionInfo[] {
    return [...this.sessions.values()].map((s) => s.info);
  }

  /** Disconnects an agent at once (used on revocation). */
  disconnect(agentId: string, code: number, reason: string): boolean {
    // Connections still in their handshake are closed too, or a revoked agent could slip through.
    const pending = [...(this.handshaking.get(agentId) ?? [])];
    for (const ws of pending) {
      ws.close(code, reason);
      setTimeout(() => ws.terminate(), 2_000).unref();
    }
    const session = this.sessions.get(agentId);
    if (!session) return pending.length > 0;
    this.endSession(session, code, reason);
    return true;
  }

  // --- internals -------------------------------------------------------------------------

  private onConnection(ws: WebSocket, socket: TLSSocket): void {
    const identity = peerIdentity(socket);
    if (!identity) {
      ws.close(CLOSE_CODES.HANDSHAKE, 'client certificate required');
      return;
    }
    const remoteAddress = socket.remoteAddress ?? 'unknown';
    let session: AgentSession | undefined;
    const pending = this.handshaking.get(identity.agentId) ?? new Set<WebSocket>();
    pending.add(ws);
    this.handshaking.set(identity.agentId, pending);
    const leaveHandshake = (): void => {
      pending.delete(ws);
      if (pending.size === 0 && this.handshaking.get(identity.agentId) === pending) {
        this.handshaking.delete(identity.agentId);
      }
    };
    const helloTimer = setTimeout(() => {
      this.log.warn('agent sent no hello', { agent: identity.agentId });
      ws.close(CLOSE_CODES.HANDSHAKE, 'hello expected');
    }, this.opts.helloTimeoutMs);

    ws.on('message', (data, isBinary) => {
      // Frames already buffered when this side started closing (a refused hello, a violation)
      // must not act: a refused agent would otherwise come online from the next frame.
      if (ws.readyState !== ws.OPEN) return;
      let msg: Message;
      try {
        if (!isBinary) throw new LoomError('LOOM_ERR_PROTOCOL', 'text frames are not part of the protocol');
        // Chunked payloads are only taken once the agent said hello, and only as large as the
        // session allows (see AgentSession.acceptChunk).
        const current = session;
        msg = decodeMessage(toBytes(data), current ? { payloads: (ref) => current.takePayload(ref) } : {});
        if (msg.type === 'chunk') {
          if (!current) throw new LoomError('LOOM_ERR_PROTOCOL', 'the first frame must be hello');
          current.alive = true;
          current.acceptChunk(msg.body);
          return;
        }
      } catch (err) {
        this.protocolViolation(ws, identity.agentId, err);
        return;
      }
      if (!session) {
        clearTimeout(helloTimer);
        leaveHandshake();
        session = this.onHello(ws, msg, { ...identity, remoteAddress });
        return;
      }
      // Any frame is a sign of life: a pong queued behind a large update must not time it out.
      session.alive = true;
      this.onSessionMessage(session, msg);
    });
    ws.on('pong', () => {
      if (session) session.alive = true;
    });
    ws.on('error', (err) =>
      this.log.warn('agent socket error', { agent: identity.agentId, error: err.message }),
    );
    ws.on('close', (code, reasonBuf) => {
      clearTimeout(helloTimer);
      leaveHandshake();
      if (!session) return;
      const reason = reasonBuf.toString() || `close code ${code}`;
      session.markClosed(reason);
      // A replaced session must not take the new one offline.
      if (this.sessions.get(session.agentId) === session) {
        this.sessions.delete(session.agentId);
        this.log.info('agent offline', { agent: session.agentId, code, reason });
        this.emit('offline', { agentId: session.agentId, reason });
      }
    });
  }

  private onHello(
    ws: WebSocket,
    msg: Message,
    identity: { agentId: string; certSerial: string; remoteAddress: string },
  ): AgentSession | undefined {
    if (msg.type !== 'hello') {
      this.sendError(ws, 'LOOM_ERR_PROTOCOL', 'the first frame must be hello');
      ws.close(CLOSE_CODES.HANDSHAKE, 'hello expected');
      return undefined;
    }
    if (this.opts.isRevoked?.(identity)) {
      this.sendError(ws, 'LOOM_ERR_CERT_REVOKED', 'this agent has been revoked');
      ws.close(CLOSE_CODES.REVOKED, 'certificate revoked');
      return undefined;
    }
    const version = msg.body.protocolVersions.find((v) => PROTOCOL_VERSIONS.includes(v));
    if (version === undefined) {
      const message = `no common protocol version: agent speaks [${msg.body.protocolVersions}], coordinator speaks [${PROTOCOL_VERSIONS}]`;
      this.log.warn('agent protocol mismatch', {
        agent: identity.agentId,
        offered: msg.body.protocolVersions,
      });
      this.sendError(ws, 'LOOM_ERR_PROTOCOL_VERSION', message);
      ws.close(CLOSE_CODES.UNSUPPORTED_VERSION, 'unsupported protocol version');
      return undefined;
    }
    const previous = this.sessions.get(identity.agentId);
    if (previous) {
      this.noteReplacement(identity.agentId, previous, identity.remoteAddress);
      this.endSession(previous, CLOSE_CODES.REPLACED, 'replaced by a newer connection');
    }
    const session = new AgentSession(
      ws,
      {
        agentId: identity.agentId,
        certSerial: identity.certSerial,
        backend: msg.body.backend,
        agentVersion: msg.body.agentVersion,
        ...(msg.body.runtime === undefined ? {} : { runtime: msg.body.runtime }),
        ...(msg.body.training === undefined ? {} : { training: msg.body.training }),
        ...(msg.body.dataFingerprint === undefined ? {} : { dataFingerprint: msg.body.dataFingerprint }),
        connectedAt: new Date(),
        remoteAddress: identity.remoteAddress,
        claimedModels: new Map(msg.body.models.map((m) => [m.name, m.version])),
        dataset: msg.body.dataset,
        partial: new Map((msg.body.partial ?? []).map((p) => [p.payload, { count: p.count, have: p.have }])),
        stored: new Set((msg.body.stored ?? []).map((m) => `${m.name}@${m.version}`)),
      },
      { chunkBytes: this.opts.chunkBytes, chunkAbove: SHARED_PAYLOAD_BYTES, chunkCache: this.chunkCache },
    );
    this.sessions.set(identity.agentId, session);
    session.send(
      'welcome',
      {
        protocolVersion: version,
        agentId: identity.agentId,
        heartbeatIntervalMs: this.opts.heartbeatIntervalMs,
        chunkBytes: this.opts.chunkBytes,
      },
      msg.id,
    );
    this.log.info('agent online', {
      agent: identity.agentId,
      remote: identity.remoteAddress,
      backend: msg.body.backend,
      protocol: version,
    });
    this.emit('online', session.info);
    return session;
  }

  private onSessionMessage(session: AgentSession, msg: Message): void {
    switch (msg.type) {
      case 'train-result':
        session.handleTrainResult(msg.body);
        return;
      case 'evaluate-result':
        session.handleEvaluateResult(msg.body);
        return;
      case 'task-error':
        session.handleTaskError(msg.body);
        return;
      case 'deploy-ack': {
        const sent = session.takeDeployAck(msg.body.name, msg.body.version);
        if (!sent) {
          this.log.warn('agent acknowledged a deployment it was not sent; ignored', {
            agent: session.agentId,
            model: msg.body.name,
            version: msg.body.version,
          });
          return;
        }
        if (msg.body.ok) session.info.stored.add(`${msg.body.name}@${msg.body.version}`);
        this.emit('deploy-ack', { agentId: session.agentId, ...msg.body, activation: sent.activation });
        return;
      }
      case 'renew':
        this.onRenew(session, msg.id, msg.body.csr);
        return;
      case 'serving-health':
        this.emit('serving-health', { agentId: session.agentId, report: msg.body });
        return;
      case 'hello':
        this.sendError(session.ws, 'LOOM_ERR_PROTOCOL', 'hello came twice', msg.id);
        session.ws.close(CLOSE_CODES.HANDSHAKE, 'hello came twice');
        return;
      case 'error':
        this.log.warn('agent reported an error', {
          agent: session.agentId,
          code: msg.body.code,
          message: msg.body.message,
        });
        this.emit('agent-error', { agentId: session.agentId, ...msg.body });
        return;
      default:
        this.sendError(session.ws, 'LOOM_ERR_PROTOCOL', `an agent may not send ${msg.type}`, msg.id);
    }
  }

  private onRenew(session: AgentSession, requestId: string, csrPem: string): void {
    const renew = this.opts.renewCertificate;
    if (!renew) {
      this.sendError(session.ws, 'LOOM_ERR_FORBIDDEN', 'certificate renewal is not enabled', requestId);
      return;
    }
    renew(session.agentId, csrPem).then(
      ({ certificate, notAfter }) => {
        if (session.isClosed) return;
        session.send('renewed', { certificate, notAfter: notAfter.toISOString() }, requestId);
        this.log.info('agent certificate renewed', {
          agent: session.agentId,
          notAfter: notAfter.toISOString(),
        });
      },
      (err: unknown) => {
        const code = isLoomError(err) ? err.code : 'LOOM_ERR_INTERNAL';
        const message = isLoomError(err) ? err.message : 'renewal failed';
        if (!isLoomError(err))
          this.log.error('certificate renewal failed', { agent: session.agentId, error: String(err) });
        this.sendError(session.ws, code, message, requestId);
      },
    );
  }

  /**
   * A new connection replacing a live one is normal once (an agent restarted before its old
   * socket timed out); two in a minute mean two processes share one identity (a cloned VM), which
   * is said once, as a warning, with both addresses.
   */
  private noteReplacement(agentId: string, previous: AgentSession, remoteAddress: string): void {
    const now = Date.now();
    const recent = (this.replacements.get(agentId) ?? []).filter((t) => now - t < DUPLICATE_WINDOW_MS);
    recent.push(now);
    this.replacements.set(agentId, recent);
    if (this.replacements.size > 10_000) this.replacements.delete(this.replacements.keys().next().value!);
    if (recent.length < 2 || this.warnedDuplicates.has(agentId)) return;
    this.warnedDuplicates.add(agentId);
    this.log.warn(
      'one agent identity is connecting from two places at once (a cloned VM or a copied data dir?); ' +
        'the newer connection wins each time. Stop the copy, or revoke this agent and enroll each site on its own',
      { agent: agentId, addresses: [...new Set([previous.info.remoteAddress, remoteAddress])].join(', ') },
    );
  }

  private protocolViolation(ws: WebSocket, agentId: string, err: unknown): void {
    const message = isLoomError(err) ? err.message : 'malformed frame';
    this.log.warn('malformed frame from agent', { agent: agentId, error: message });
    this.sendError(ws, isLoomError(err) ? err.code : 'LOOM_ERR_PROTOCOL', message);
    ws.close(CLOSE_CODES.MALFORMED_FRAME, 'malformed frame');
  }

  private sendError(ws: WebSocket, code: string, message: string, replyTo?: string): void {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(encodeMessage(createMessage('error', { code, message }, replyTo)));
  }

  private endSession(session: AgentSession, code: number, reason: string): void {
    session.markClosed(reason);
    if (this.sessions.get(session.agentId) === session) {
      this.sessions.delete(session.agentId);
      this.emit('offline', { agentId: session.agentId, reason });
    }
    session.ws.close(code, reason);
    // A peer that does not answer the close handshake is cut off.
    setTimeout(() => session.ws.terminate(), 2_000).unref();
  }

  private tickHeartbeat(): void {
    // A late tick means this process's event loop was stalled (a long synchronous dispatch, say):
    // the pongs that came meanwhile are still unread, so this tick pings but judges nobody.
    const now = Date.now();
    const late = now - this.lastHeartbeat > 1.5 * this.opts.heartbeatIntervalMs;
    this.lastHeartbeat = now;
    for (const session of this.sessions.values()) {
      if (!session.alive && !late) {
        this.log.warn('agent missed heartbeats', { agent: session.agentId });
        this.endSession(session, CLOSE_CODES.HEARTBEAT_TIMEOUT, 'heartbeat timeout');
        continue;
      }
      session.alive = false;
      session.ws.ping();
    }
  }
}

function peerIdentity(socket: TLSSocket): { agentId: string; certSerial: string } | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  const cn = cert?.subject?.CN;
  const agentId = Array.isArray(cn) ? cn[0] : cn;
  if (!agentId || !cert.serialNumber) return undefined;
  return { agentId, certSerial: cert.serialNumber.toLowerCase() };
}

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

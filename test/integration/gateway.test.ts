// The agent gateway over real mutual TLS on 127.0.0.1: who gets in (certificates from the Loom CA
// only, revocation checked at every connection), the hello/welcome handshake, how protocol
// violations end a connection, heartbeats, replacement, in-flight tasks, and the agent side's
// reconnect. Raw `ws` clients send hand-made frames where a real agent never would.
import type { EventEmitter } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  certificateInfo,
  createCA,
  createKeyAndCsr,
  issueServerCert,
  type KeyCertPair,
  signCsr,
} from '../../certs/index.ts';
import { AgentGateway, type AgentGatewayOptions } from '../../coordinator/gateway/index.ts';
import {
  CoordinatorConnection,
  type CoordinatorConnectionOptions,
} from '../../edge-agent/connection/index.ts';
import { loadIdentity } from '../../edge-agent/identity/index.ts';
import { isLoomError, type LoomError } from '../../shared/errors/index.ts';
import { createLogger } from '../../shared/log/index.ts';
import {
  CLOSE_CODES,
  createMessage,
  decodeMessage,
  encodeMessage,
  encodeTensorBytes,
  type HelloBody,
  type Message,
  type MessageBodies,
  type MessageType,
  PROTOCOL_VERSIONS,
  type WelcomeBody,
} from '../../shared/protocol/index.ts';
import { sleep, startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';
import { datasetSummary } from '../helpers/dataset.ts';

const silent = createLogger('silent');
const FRAME_TIMEOUT_MS = 5_000;

// --- PKI -----------------------------------------------------------------------------------

interface AgentCert {
  agentId: string;
  certPem: string;
  keyPem: string;
}

interface Pki {
  ca: KeyCertPair;
  server: KeyCertPair;
  alpha: AgentCert;
  beta: AgentCert;
  /** Signed by a CA the gateway does not trust. */
  outsider: AgentCert;
}

/** An agent certificate as enrollment makes one: the CSR asks for a name, the CA sets the id. */
function issueAgentCert(ca: KeyCertPair, agentId: string): AgentCert {
  const { keyPem, csrPem } = createKeyAndCsr({ commonName: `requested-${agentId}` });
  return { agentId, certPem: signCsr(ca, csrPem, { subjectCN: agentId }).certPem, keyPem };
}

let pki: Pki;

beforeAll(() => {
  const ca = createCA({ commonName: 'Loom Test CA' });
  const otherCa = createCA({ commonName: 'Loom Test CA' });
  pki = {
    ca,
    server: issueServerCert(ca, { hosts: ['127.0.0.1', 'localhost'] }),
    alpha: issueAgentCert(ca, 'agent-alpha'),
    beta: issueAgentCert(ca, 'agent-beta'),
    // Same CN and same CA name as a real agent: only the signature tells them apart.
    outsider: issueAgentCert(otherCa, 'agent-alpha'),
  };
});

// --- cleanup -------------------------------------------------------------------------------

const cleanups: (() => Promise<void> | void)[] = [];

/** Registers `fn` to run after the current test; the latest registered runs first. */
function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

// --- helpers -------------------------------------------------------------------------------

interface TestGateway {
  gateway: AgentGateway;
  url: string;
  /** Agent ids the authorize callback was asked about, in order. */
  authorized: string[];
  /** Agents the authorize callback refuses (403). */
  revoked: Set<string>;
}

async function startGateway(overrides: Partial<AgentGatewayOptions> = {}): Promise<TestGateway> {
  const authorized: string[] = [];
  const revoked = new Set<string>();
  const gateway = new AgentGateway({
    caCertPem: pki.ca.certPem,
    serverCertPem: pki.server.certPem,
    serverKeyPem: pki.server.keyPem,
    host: '127.0.0.1',
    port: 0,
    log: silent,
    authorize: async ({ agentId }) => {
      authorized.push(agentId);
      return revoked.has(agentId) ? { ok: false, status: 403, reason: 'agent revoked' } : { ok: true };
    },
    ...overrides,
  });
  const port = await gateway.listen();
  onCleanup(() => gateway.close());
  return { gateway, url: `wss://127.0.0.1:${port}/v1/agent`, authorized, revoked };
}

function helloBody(protocolVersions: number[] = [...PROTOCOL_VERSIONS]): HelloBody {
  return {
    protocolVersions,
    agentVersion: '0.0.0-test',
    backend: 'cpu',
    models: [],
    dataset: datasetSummary(100),
  };
}

interface Closed {
  code: number;
  reason: string;
}

interface RawAgentOptions {
  /** Client certificate; none when absent. */
  cert?: AgentCert;
  /** CA the client trusts (default: the test CA). */
  caPem?: string;
  /** Set false to ignore the gateway's pings. */
  autoPong?: boolean;
}

/** A hand-driven agent: a raw `ws` client that queues every decoded frame it receives. */
class RawAgent {
  readonly ws: WebSocket;
  /** Resolves on open; rejects with the error that kept the connection from opening. */
  readonly opened: Promise<void>;
  readonly closed: Promise<Closed>;
  private readonly inbox: Message[] = [];
  private readonly waiters: ((msg: Message) => void)[] = [];

  constructor(url: string, options: RawAgentOptions = {}) {
    this.ws = new WebSocket(url, {
      ca: [options.caPem ?? pki.ca.certPem],
      ...(options.cert ? { cert: options.cert.certPem, key: options.cert.keyPem } : {}),
      autoPong: options.autoPong ?? true,
      handshakeTimeout: FRAME_TIMEOUT_MS,
    });
    this.opened = new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise<Closed>((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data, isBinary) => {
      if (!isBinary) throw new Error('the gateway sent a text frame');
      const msg = decodeMessage(data as Buffer);
      const waiter = this.waiters.shift();
      if (waiter) waiter(msg);
      else this.inbox.push(msg);
    });
    onCleanup(() => this.ws.terminate());
  }

  /** Connects and resolves once the upgrade succeeded. */
  static async connect(url: string, options: RawAgentOptions): Promise<RawAgent> {
    const agent = new RawAgent(url, options);
    await agent.opened;
    return agent;
  }

  send<T extends MessageType>(type: T, body: MessageBodies[T], replyTo?: string): Message {
    const msg = createMessage(type, body, replyTo) as Message;
    this.ws.send(encodeMessage(msg));
    return msg;
  }

  /** The next frame from the gateway. */
  next(): Promise<Message> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no frame from the gateway')), FRAME_TIMEOUT_MS);
      this.waiters.push((msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
  }

  /** The next frame, which must be of `type`. */
  async expect<T extends MessageType>(type: T): Promise<Extract<Message, { type: T }>> {
    const msg = await this.next();
    expect(msg.type).toBe(type);
    return msg as Extract<Message, { type: T }>;
  }

  /** Says hello and returns the welcome. */
  async handshake(versions?: number[]): Promise<WelcomeBody> {
    const hello = this.send('hello', helloBody(versions));
    const welcome = await this.expect('welcome');
    expect(welcome.replyTo).toBe(hello.id);
    return welcome.body;
  }

  /** Resolves with the close frame, or fails the test if none comes in time. */
  closedWithin(ms = FRAME_TIMEOUT_MS): Promise<Closed> {
    return withTimeout(this.closed, ms, 'the connection to close');
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The next `name` event of `emitter`, or a failure after `ms`. */
function nextEvent<T>(emitter: EventEmitter, name: string, ms = FRAME_TIMEOUT_MS): Promise<T> {
  return withTimeout(
    new Promise<T>((resolve) => emitter.once(name, (value: T) => resolve(value))),
    ms,
    `event ${name}`,
  );
}

function trainTask(taskId: string): Parameters<AgentGateway['runTrainTask']>[1] {
  return {
    taskId,
    jobId: 'job-1',
    round: 1,
    model: {
      name: 'mnist',
      version: 1,
      architecture: { kind: 'logistic', inputShape: [4], classes: 2 },
    },
    hyper: { epochs: 1, batchSize: 8, learningRate: 0.1 },
    weights: encodeTensorBytes([{ name: 'w', shape: [4, 2], dtype: 'float32', data: new Float32Array(8) }]),
  };
}

// --- admission -----------------------------------------------------------------------------

/** The connection failed below HTTP (a TLS alert or a reset), so no upgrade response was seen. */
async function expectTlsRefusal(agent: RawAgent): Promise<void> {
  const err = await agent.opened.then(
    () => new Error('the connection opened'),
    (e: unknown) => e as Error,
  );
  expect(err.message).not.toMatch(/Unexpected server response|opened/);
  expect(err.message).toMatch(/certificate|alert|hang up|ECONNRESET/);
}

describe('admission', () => {
  it('refuses a client that presents no certificate before any upgrade', async () => {
    const { gateway, url, authorized } = await startGateway();
    const agent = new RawAgent(url);
    await expectTlsRefusal(agent);
    expect(authorized).toStrictEqual([]);
    expect(gateway.onlineAgentIds()).toStrictEqual([]);
  });

  it('refuses a client certificate issued by another CA, even one naming a known agent', async () => {
    const { gateway, url, authorized } = await startGateway();
    const agent = new RawAgent(url, { cert: pki.outsider });
    await expectTlsRefusal(agent);
    expect(authorized).toStrictEqual([]);
    expect(gateway.onlineAgentIds()).toStrictEqual([]);
  });

  it('refuses an agent that authorize turns down, with the HTTP status it gives', async () => {
    const { url, authorized, revoked } = await startGateway();
    revoked.add(pki.alpha.agentId);
    const agent = new RawAgent(url, { cert: pki.alpha });
    await expect(agent.opened).rejects.toThrow(/Unexpected server response: 403/);
    expect(authorized).toStrictEqual([pki.alpha.agentId]);
  });

  it('welcomes an agent with the id from its certificate and the newest common version', async () => {
    const { gateway, url, authorized } = await startGateway({ heartbeatIntervalMs: 1_234 });
    const online = nextEvent<{ agentId: string }>(gateway, 'online');
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    const welcome = await agent.handshake([99, 2, 1]);
    expect(welcome).toStrictEqual({
      protocolVersion: 2,
      agentId: 'agent-alpha',
      heartbeatIntervalMs: 1_234,
      chunkBytes: 8 * 1024 * 1024,
    });
    expect(authorized).toStrictEqual(['agent-alpha']);
    expect((await online).agentId).toBe('agent-alpha');
    expect(gateway.onlineAgentIds()).toStrictEqual(['agent-alpha']);
    expect(gateway.session('agent-alpha')?.info.backend).toBe('cpu');
  });
});

describe('one identity in two places', () => {
  it('warns once, with both addresses, when one identity keeps replacing its own connection', async () => {
    const lines: string[] = [];
    const { url } = await startGateway({ log: createLogger({ write: (l) => lines.push(l) }) });
    let previous = await RawAgent.connect(url, { cert: pki.alpha });
    await previous.handshake();
    for (let i = 0; i < 4; i++) {
      const next = await RawAgent.connect(url, { cert: pki.alpha });
      await next.handshake();
      expect((await previous.closedWithin()).code).toBe(CLOSE_CODES.REPLACED);
      previous = next;
    }
    const warnings = lines.filter((l) => /connecting from two places/.test(l));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/WARN .*agent=agent-alpha .*addresses=/);
  });
});

describe('revocation during the handshake', () => {
  it('closes a connection that is still before hello when its agent is disconnected', async () => {
    const { gateway, url } = await startGateway();
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    expect(gateway.disconnect(pki.alpha.agentId, CLOSE_CODES.REVOKED, 'certificate revoked')).toBe(true);
    expect((await agent.closed).code).toBe(CLOSE_CODES.REVOKED);
  });

  it('refuses a hello from an agent revoked after authorize let it in', async () => {
    const revokedNow = new Set<string>();
    const { url } = await startGateway({ isRevoked: ({ agentId }) => revokedNow.has(agentId) });
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    revokedNow.add(pki.alpha.agentId);
    agent.send('hello', helloBody());
    expect((await agent.next()).type).toBe('error');
    expect((await agent.closed).code).toBe(CLOSE_CODES.REVOKED);
  });
});

describe('with a real coordinator', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster();
  });

  afterAll(async () => {
    await cluster?.close();
  });

  /** Enrolls an agent through the API and reads back the identity files it wrote. */
  async function enrolled(name: string): Promise<{ url: string; options: RawAgentOptions }> {
    const { dataDir, agentId } = await cluster.enroll(name);
    const identity = await loadIdentity(dataDir);
    expect(identity.agentId).toBe(agentId);
    return {
      url: identity.agentUrl,
      options: {
        cert: { agentId, certPem: identity.certPem, keyPem: identity.keyPem },
        caPem: identity.caPem,
      },
    };
  }

  it('accepts an enrolled agent and welcomes it with the CN of its certificate as agent id', async () => {
    const { url, options } = await enrolled('welcome-me');
    const agent = await RawAgent.connect(url, options);
    const welcome = await agent.handshake();
    expect(welcome.agentId).toBe(certificateInfo(options.cert!.certPem).subjectCN);
    expect(welcome.agentId).toBe(options.cert!.agentId);
    expect(cluster.coordinator.gateway.onlineAgentIds()).toContain(welcome.agentId);
  });

  it('disconnects a revoked agent at once with 4003 and refuses its next connection with HTTP 403', async () => {
    const { url, options } = await enrolled('revoke-me');
    const agentId = options.cert!.agentId;
    const agent = await RawAgent.connect(url, options);
    await agent.handshake();
    const revoked = await cluster.api<{ revoked: boolean; disconnected: boolean }>(
      `/v1/agents/${agentId}/revoke`,
      {},
    );
    expect(revoked).toMatchObject({ revoked: true, disconnected: true });
    expect((await agent.closedWithin(1_000)).code).toBe(CLOSE_CODES.REVOKED);
    expect(cluster.coordinator.gateway.onlineAgentIds()).not.toContain(agentId);

    const again = new RawAgent(url, options);
    await expect(again.opened).rejects.toThrow(/Unexpected server response: 403/);
  });
});

// --- handshake and protocol violations ---------------------------------------------------

describe('protocol violations', () => {
  it('answers a first frame that is not hello with an error frame and close 4006', async () => {
    const { gateway, url } = await startGateway();
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    agent.send('cancel', { taskId: 't1' });
    const error = await agent.expect('error');
    expect(error.body).toStrictEqual({ code: 'LOOM_ERR_PROTOCOL', message: 'the first frame must be hello' });
    expect((await agent.closedWithin()).code).toBe(CLOSE_CODES.HANDSHAKE);
    expect(gateway.onlineAgentIds()).toStrictEqual([]);
  });

  it('answers a hello offering only version 99 with LOOM_ERR_PROTOCOL_VERSION and close 4001', async () => {
    const { gateway, url } = await startGateway();
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    agent.send('hello', helloBody([99]));
    const error = await agent.expect('error');
    expect(error.body.code).toBe('LOOM_ERR_PROTOCOL_VERSION');
    expect(error.body.message).toContain('99');
    expect((await agent.closedWithin()).code).toBe(CLOSE_CODES.UNSUPPORTED_VERSION);
    expect(gateway.onlineAgentIds()).toStrictEqual([]);
  });

  it('ignores frames that arrive after it decided to close, so a refused agent never comes online', async () => {
    const { gateway, url } = await startGateway();
    const online: string[] = [];
    gateway.on('online', (info) => online.push(info.agentId));
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    // Both frames leave in one burst: the hello is already buffered when the cancel is refused.
    agent.send('cancel', { taskId: 't1' });
    agent.send('hello', helloBody());
    expect((await agent.expect('error')).body.code).toBe('LOOM_ERR_PROTOCOL');
    expect((await agent.closedWithin()).code).toBe(CLOSE_CODES.HANDSHAKE);
    expect(online).toStrictEqual([]);
    expect(gateway.onlineAgentIds()).toStrictEqual([]);
  });

  it('closes with 4006 when hello comes a second time', async () => {
    const { gateway, url } = await startGateway();
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    await agent.handshake();
    agent.send('hello', helloBody());
    expect((await agent.expect('error')).body.code).toBe('LOOM_ERR_PROTOCOL');
    expect((await agent.closedWithin()).code).toBe(CLOSE_CODES.HANDSHAKE);
    await waitUntil(() => gateway.onlineAgentIds().length === 0, 2_000, 'the agent to go offline');
  });

  it('answers a garbage binary frame after hello with an error frame and close 4000, and keeps serving others', async () => {
    const { gateway, url } = await startGateway();
    const beta = await RawAgent.connect(url, { cert: pki.beta });
    await beta.handshake();
    const alpha = await RawAgent.connect(url, { cert: pki.alpha });
    await alpha.handshake();
    const offline = nextEvent<{ agentId: string }>(gateway, 'offline');

    alpha.ws.send(Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37]));
    expect((await alpha.expect('error')).body.code).toBe('LOOM_ERR_PROTOCOL');
    expect((await alpha.closedWithin()).code).toBe(CLOSE_CODES.MALFORMED_FRAME);
    expect((await offline).agentId).toBe('agent-alpha');

    // beta is untouched and still answers tasks; alpha may come back with a new connection.
    expect(gateway.onlineAgentIds()).toStrictEqual(['agent-beta']);
    const result = gateway.runTrainTask('agent-beta', trainTask('task-beta'));
    const train = await beta.expect('train');
    beta.send('task-error', { taskId: train.body.taskId, code: 'LOOM_ERR_DATA', message: 'no data' });
    await expect(result).rejects.toMatchObject({ code: 'LOOM_ERR_TASK_FAILED' });
    const alphaAgain = await RawAgent.connect(url, { cert: pki.alpha });
    expect((await alphaAgain.handshake()).agentId).toBe('agent-alpha');
  });

  it('answers a frame that decodes but fails validation with the reason and close 4000', async () => {
    const { url } = await startGateway();
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    await agent.handshake();
    const msg = createMessage('task-error', { taskId: 't1', code: 'X', message: 'y' });
    agent.ws.send(encodeMessage({ ...msg, body: { ...msg.body, taskId: 'not valid!' } }));
    const error = await agent.expect('error');
    expect(error.body).toMatchObject({ code: 'LOOM_ERR_PROTOCOL' });
    expect(error.body.message).toContain('body.taskId');
    expect((await agent.closedWithin()).code).toBe(CLOSE_CODES.MALFORMED_FRAME);
  });

  it.each([
    ['before hello', false],
    ['after hello', true],
  ])('closes with 4000 on a text frame sent %s', async (_when, handshakeFirst) => {
    const { gateway, url } = await startGateway();
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    if (handshakeFirst) await agent.handshake();
    agent.ws.send(JSON.stringify({ type: 'hello' }));
    expect((await agent.closedWithin()).code).toBe(CLOSE_CODES.MALFORMED_FRAME);
    await waitUntil(() => gateway.onlineAgentIds().length === 0, 2_000, 'the agent to go offline');
  });
});

// --- sessions ------------------------------------------------------------------------------

describe('sessions', () => {
  it('resolves runTrainTask with the update an agent sends back', async () => {
    const { gateway, url } = await startGateway();
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    await agent.handshake();
    const result = gateway.runTrainTask('agent-alpha', trainTask('task-1'));
    const train = await agent.expect('train');
    expect(train.body.taskId).toBe('task-1');
    const update = new Float32Array([0.5, -0.5, 0, 1, 2, 3, 4, Number.NaN]);
    agent.send('train-result', {
      taskId: 'task-1',
      jobId: 'job-1',
      round: 1,
      numExamples: 8,
      metrics: { loss: 0.7 },
      update: encodeTensorBytes([{ name: 'w', shape: [4, 2], dtype: 'float32', data: update }]),
      trainMs: 12,
    });
    const outcome = await result;
    expect(outcome).toMatchObject({ numExamples: 8, metrics: { loss: 0.7 }, trainMs: 12 });
    expect(Array.from(outcome.update[0].data)).toStrictEqual(Array.from(update));
  });

  it('rejects an in-flight runTrainTask with LOOM_ERR_AGENT_DISCONNECTED when the agent drops', async () => {
    const { gateway, url } = await startGateway();
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    await agent.handshake();
    const result = gateway.runTrainTask('agent-alpha', trainTask('task-1'));
    result.catch(() => undefined);
    await agent.expect('train');
    expect(gateway.session('agent-alpha')?.inFlight).toBe(1);
    agent.ws.terminate(); // no close frame: the TCP connection just goes away
    const err = await withTimeout(
      result.then(
        () => undefined,
        (e: unknown) => e,
      ),
      FRAME_TIMEOUT_MS,
      'the task to fail',
    );
    expect(isLoomError(err, 'LOOM_ERR_AGENT_DISCONNECTED')).toBe(true);
    expect((err as LoomError).message).toContain('agent-alpha');
    expect(gateway.onlineAgentIds()).toStrictEqual([]);
    await expect(gateway.runTrainTask('agent-alpha', trainTask('task-2'))).rejects.toMatchObject({
      code: 'LOOM_ERR_AGENT_DISCONNECTED',
    });
  });

  it('disconnects an agent that stops answering pings with 4004 and keeps one that answers', async () => {
    const { gateway, url } = await startGateway({ heartbeatIntervalMs: 200 });
    const offline: { agentId: string; reason: string }[] = [];
    gateway.on('offline', (e) => offline.push(e));
    const deaf = await RawAgent.connect(url, { cert: pki.alpha, autoPong: false });
    await deaf.handshake();
    const healthy = await RawAgent.connect(url, { cert: pki.beta });
    await healthy.handshake();

    expect((await deaf.closedWithin(2_000)).code).toBe(CLOSE_CODES.HEARTBEAT_TIMEOUT);
    // Caught by the second or third tick after the hello.
    expect(offline).toStrictEqual([{ agentId: 'agent-alpha', reason: 'heartbeat timeout' }]);
    await sleep(600);
    expect(gateway.onlineAgentIds()).toStrictEqual(['agent-beta']);
    expect(healthy.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('keeps an agent whose pong waited out a stall of the gateway event loop longer than a heartbeat', async () => {
    const { gateway, url } = await startGateway({ heartbeatIntervalMs: 200 });
    const offline: string[] = [];
    gateway.on('offline', (e) => offline.push(e.reason));
    const agent = await RawAgent.connect(url, { cert: pki.alpha });
    await agent.handshake();
    // The pong goes out at once; the loop then stalls 2.5 intervals before the gateway can read it.
    await nextEvent(agent.ws, 'ping');
    const stallUntil = Date.now() + 500;
    while (Date.now() < stallUntil) {
      // busy: nothing else in this process runs
    }
    for (let i = 0; i < 3; i++) await nextEvent(agent.ws, 'ping');
    expect(offline).toStrictEqual([]);
    expect(agent.ws.readyState).toBe(WebSocket.OPEN);
    expect(gateway.onlineAgentIds()).toStrictEqual(['agent-alpha']);
  });

  it('replaces the first connection of an agent that connects twice, closing it with 4005', async () => {
    const { gateway, url } = await startGateway();
    const events: string[] = [];
    gateway.on('online', (info) => events.push(`online ${info.agentId}`));
    gateway.on('offline', (e) => events.push(`offline ${e.agentId}`));
    const first = await RawAgent.connect(url, { cert: pki.alpha });
    await first.handshake();
    const firstTask = gateway.runTrainTask('agent-alpha', trainTask('task-old'));
    firstTask.catch(() => undefined);
    await first.expect('train');

    const second = await RawAgent.connect(url, { cert: pki.alpha });
    await second.handshake();
    expect((await first.closedWithin()).code).toBe(CLOSE_CODES.REPLACED);
    await expect(firstTask).rejects.toMatchObject({ code: 'LOOM_ERR_AGENT_DISCONNECTED' });

    // The old connection's close does not take the new one offline.
    await sleep(100);
    expect(gateway.onlineAgentIds()).toStrictEqual(['agent-alpha']);
    expect(gateway.session('agent-alpha')?.isClosed).toBe(false);
    expect(events).toStrictEqual(['online agent-alpha', 'offline agent-alpha', 'online agent-alpha']);
    const result = gateway.runTrainTask('agent-alpha', trainTask('task-new'));
    expect((await second.expect('train')).body.taskId).toBe('task-new');
    gateway.cancelTask('agent-alpha', 'task-new');
    expect((await second.expect('cancel')).body.taskId).toBe('task-new');
    expect(gateway.session('agent-alpha')?.inFlight).toBe(0);
    result.catch(() => undefined);
  });

  it('closes connections that never said hello when it shuts down', async () => {
    const { gateway, url } = await startGateway();
    const silentAgent = await RawAgent.connect(url, { cert: pki.alpha });
    await withTimeout(gateway.close(), 3_000, 'the gateway to close');
    expect((await silentAgent.closedWithin(1_000)).code).toBe(CLOSE_CODES.GOING_AWAY);
  });
});

// --- the agent side ------------------------------------------------------------------------

describe('CoordinatorConnection', () => {
  it('reconnects after the coordinator restarts on the same port and emits connected again', async () => {
    const first = await startGateway({ heartbeatIntervalMs: 500 });
    const port = first.gateway.port;
    const connection = new CoordinatorConnection({
      url: first.url,
      certPem: pki.alpha.certPem,
      keyPem: pki.alpha.keyPem,
      caPem: pki.ca.certPem,
      hello: () => helloBody(),
      backoff: { initialMs: 50, maxMs: 200 },
      log: silent,
    });
    onCleanup(() => connection.stop());
    const connected = nextEvent<WelcomeBody>(connection, 'connected');
    connection.start();
    expect((await connected).agentId).toBe('agent-alpha');
    expect(connection.connected).toBe(true);

    const disconnected = nextEvent<{ code: number }>(connection, 'disconnected');
    await first.gateway.close();
    expect((await disconnected).code).toBe(CLOSE_CODES.GOING_AWAY);
    expect(connection.connected).toBe(false);
    // Let a few reconnect attempts fail against the closed port.
    await sleep(300);

    const reconnected = nextEvent<WelcomeBody>(connection, 'connected');
    const second = await startGateway({ port, heartbeatIntervalMs: 500 });
    expect(second.gateway.port).toBe(port);
    expect(await reconnected).toStrictEqual({
      protocolVersion: 2,
      agentId: 'agent-alpha',
      heartbeatIntervalMs: 500,
      chunkBytes: 8 * 1024 * 1024,
    });
    expect(connection.connected).toBe(true);
    expect(second.gateway.onlineAgentIds()).toStrictEqual(['agent-alpha']);
    connection.send('error', { code: 'LOOM_ERR_DATA', message: 'still here' });
  });

  /** A connected CoordinatorConnection for agent-alpha. */
  async function connectedAlpha(
    url: string,
    extra: Partial<CoordinatorConnectionOptions> = {},
  ): Promise<CoordinatorConnection> {
    const connection = new CoordinatorConnection({
      url,
      certPem: pki.alpha.certPem,
      keyPem: pki.alpha.keyPem,
      caPem: pki.ca.certPem,
      hello: () => helloBody(),
      log: silent,
      ...extra,
    });
    onCleanup(() => connection.stop());
    const connected = nextEvent<WelcomeBody>(connection, 'connected');
    connection.start();
    await connected;
    return connection;
  }

  it('backs off and says why when another process with its identity takes over, waiting longer each time', async () => {
    const { gateway, url } = await startGateway();
    const lines: string[] = [];
    const connection = await connectedAlpha(url, {
      replacedBackoff: { initialMs: 200 },
      log: createLogger({ write: (l) => lines.push(l) }),
    });

    // A copy of the identity (a cloned VM) connects: the gateway keeps the newer connection.
    const clone = await RawAgent.connect(url, { cert: pki.alpha });
    const replaced = nextEvent<{ retryInMs: number; times: number }>(connection, 'replaced');
    await clone.handshake();
    expect(await replaced).toEqual({ retryInMs: 200, times: 1 });
    expect(lines.join('\n')).toMatch(/WARN .*another process with this agent identity connected.*cloned VM/);
    expect(connection.connected).toBe(false);

    // It comes back after its wait, the clone loses, comes back too: the wait doubles.
    const back = nextEvent<WelcomeBody>(connection, 'connected');
    expect((await clone.closedWithin()).code).toBe(CLOSE_CODES.REPLACED);
    await back;
    const second = nextEvent<{ retryInMs: number; times: number }>(connection, 'replaced');
    const clone2 = await RawAgent.connect(url, { cert: pki.alpha });
    await clone2.handshake();
    expect(await second).toEqual({ retryInMs: 400, times: 2 });
    expect(gateway.onlineAgentIds()).toStrictEqual(['agent-alpha']);
  });

  it('waits 30 s by default after being replaced', async () => {
    const { url } = await startGateway();
    const connection = await connectedAlpha(url);
    const replaced = nextEvent<{ retryInMs: number }>(connection, 'replaced');
    await (await RawAgent.connect(url, { cert: pki.alpha })).handshake();
    expect((await replaced).retryInMs).toBe(30_000);
  });

  it('stops for good when the coordinator revokes it with 4003', async () => {
    const { gateway, url } = await startGateway();
    const connection = new CoordinatorConnection({
      url,
      certPem: pki.alpha.certPem,
      keyPem: pki.alpha.keyPem,
      caPem: pki.ca.certPem,
      hello: () => helloBody(),
      backoff: { initialMs: 10, maxMs: 20 },
      log: silent,
    });
    onCleanup(() => connection.stop());
    const connected = nextEvent<WelcomeBody>(connection, 'connected');
    connection.start();
    await connected;
    const rejected = nextEvent<LoomError>(connection, 'rejected');
    gateway.disconnect('agent-alpha', CLOSE_CODES.REVOKED, 'certificate revoked');
    expect((await rejected).code).toBe('LOOM_ERR_CERT_REVOKED');
    await sleep(200);
    expect(gateway.onlineAgentIds()).toStrictEqual([]);
  });
});

// One process of the fleet bench's agent emulators: holds agents [from, from + count), each with
// its own cached RSA key, a certificate from the real `POST /v1/enroll` with a real one-time
// token, and its own mutual-TLS WebSocket to the gateway speaking the real protocol through the
// shared codec: hello with a dataset summary, train → train-result (the update of
// fleet-updates.ts), deploy → deploy-ack; pings are answered by ws. No training, no model store.
import WebSocket from 'ws';
import { requestJson } from '../shared/http/index.ts';
import {
  createMessage,
  type DatasetSummary,
  DEFAULT_MAX_FRAME_BYTES,
  decodeMessage,
  decodeTensorBytes,
  encodeMessage,
  encodeTensorBytes,
  type HelloBody,
  type Message,
  type MessageBodies,
  type MessageType,
  PROTOCOL_VERSIONS,
} from '../shared/protocol/index.ts';
import { specsOf, type WeightSpec } from '../shared/tensors/index.ts';
import { type CachedIdentity, generateChunk, loadIdentities } from './fleet-identities.ts';
import {
  type EmulatorReport,
  type EmulatorRound,
  type EmulatorSetup,
  type FromEmulator,
  nowMs,
  type ToEmulator,
} from './fleet-ipc.ts';
import { examplesOf, updateOf } from './fleet-updates.ts';

interface Agent {
  index: number;
  identity: CachedIdentity;
  agentId: string;
  certPem: string;
  ws?: WebSocket;
  welcomed: boolean;
  /** The encoded update, made at its first task (its shapes are those of the global weights). */
  update?: { shapes: string; bytes: Buffer };
  /** Tasks cancelled while their simulated training ran. */
  cancelled: Set<string>;
}

const FEATURES = 784;

/** An MNIST-like summary of `examples` examples of 784 features in [0, 1], as a real agent's hello carries. */
function datasetSummary(examples: number): DatasetSummary {
  return {
    examples,
    featureShape: [FEATURES],
    features: FEATURES,
    labels: Array.from({ length: 10 }, (_, i) => ({
      value: i,
      count: Math.floor(examples / 10) + (i < examples % 10 ? 1 : 0),
    })),
    otherLabels: { distinct: 0, examples: 0 },
    nonFiniteValues: 0,
    featureStats: {
      groupSize: 1,
      groups: FEATURES,
      min: new Array(FEATURES).fill(0),
      max: new Array(FEATURES).fill(1),
      mean: new Array(FEATURES).fill(0.13),
    },
  };
}

function reply(msg: FromEmulator): void {
  process.send?.(msg);
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

let setup: EmulatorSetup;
let agents: Agent[] = [];
let stopping = false;
const rounds = new Map<number, EmulatorRound>();
const report: Omit<EmulatorReport, 'rounds'> = {
  closes: {},
  reconnects: 0,
  deploys: 0,
  lastDeployAt: 0,
  errors: {},
};
/** Specs of the global weights per model version, decoded once per process. */
const specsByModel = new Map<string, WeightSpec[]>();

function count(into: Record<string, number>, key: string): void {
  into[key] = (into[key] ?? 0) + 1;
}

function roundOf(round: number): EmulatorRound {
  let r = rounds.get(round);
  if (!r) {
    r = {
      round,
      trains: 0,
      firstTrainAt: Number.POSITIVE_INFINITY,
      lastTrainAt: 0,
      lastResultAt: 0,
      results: {},
    };
    rounds.set(round, r);
  }
  return r;
}

function sendOn<T extends MessageType>(
  agent: Agent,
  type: T,
  body: MessageBodies[T],
  replyTo?: string,
): boolean {
  const ws = agent.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(encodeMessage(createMessage(type, body, replyTo) as Message));
  return true;
}

function onTrain(agent: Agent, body: MessageBodies['train']): void {
  const r = roundOf(body.round);
  const at = nowMs();
  r.trains++;
  r.firstTrainAt = Math.min(r.firstTrainAt, at);
  r.lastTrainAt = Math.max(r.lastTrainAt, at);
  const key = `${body.model.name}@${body.model.version}`;
  let specs = specsByModel.get(key);
  if (!specs) {
    specs = specsOf(decodeTensorBytes(body.weights));
    specsByModel.set(key, specs);
  }
  const shapes = JSON.stringify(specs.map((s) => [s.name, s.shape]));
  if (agent.update?.shapes !== shapes)
    agent.update = { shapes, bytes: encodeTensorBytes(updateOf(agent.index, specs)) };
  const update = agent.update.bytes;
  const answer = (): void => {
    if (agent.cancelled.delete(body.taskId)) return;
    const sent = sendOn(agent, 'train-result', {
      taskId: body.taskId,
      jobId: body.jobId,
      round: body.round,
      numExamples: examplesOf(agent.index),
      metrics: { loss: 0.5, accuracy: 0.8 },
      update,
      trainMs: setup.trainMs,
    });
    if (!sent) return;
    r.results[agent.agentId] = (r.results[agent.agentId] ?? 0) + 1;
    r.lastResultAt = Math.max(r.lastResultAt, nowMs());
  };
  if (setup.trainMs > 0) setTimeout(answer, setup.trainMs);
  else answer();
}

function onFrame(agent: Agent, msg: Message): void {
  switch (msg.type) {
    case 'train':
      onTrain(agent, msg.body);
      return;
    case 'cancel':
      if (setup.trainMs > 0) agent.cancelled.add(msg.body.taskId);
      return;
    case 'deploy':
      // A real agent verifies the signature and stores the version first; an emulator just accepts it.
      if (
        sendOn(agent, 'deploy-ack', { name: msg.body.model.name, version: msg.body.model.version, ok: true })
      ) {
        report.deploys++;
        report.lastDeployAt = nowMs();
      }
      return;
    case 'error':
      count(report.errors, msg.body.code);
      return;
    default:
      count(report.errors, `unexpected ${msg.type}`);
  }
}

function hello(agent: Agent): HelloBody {
  return {
    protocolVersions: [...PROTOCOL_VERSIONS],
    agentVersion: 'fleet-bench',
    backend: 'emulated',
    models: [],
    dataset: datasetSummary(examplesOf(agent.index)),
  };
}

/** Opens one agent's connection; resolves once it is welcomed or failed (it then retries on its own). */
function connect(agent: Agent): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(setup.agentUrl, {
      cert: agent.certPem,
      key: agent.identity.keyPem,
      ca: [setup.caPem],
      rejectUnauthorized: true,
      maxPayload: DEFAULT_MAX_FRAME_BYTES,
      handshakeTimeout: 60_000,
    });
    agent.ws = ws;
    agent.welcomed = false;
    let settled = false;
    const settle = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      resolve(ok);
    };
    ws.on('open', () => ws.send(encodeMessage(createMessage('hello', hello(agent)))));
    ws.on('message', (data, isBinary) => {
      let msg: Message;
      try {
        if (!isBinary) throw new Error('text frame');
        msg = decodeMessage(data as Buffer);
      } catch {
        count(report.errors, 'undecodable frame');
        return;
      }
      if (!agent.welcomed) {
        if (msg.type === 'welcome') {
          agent.welcomed = true;
          settle(true);
        } else count(report.errors, `before welcome: ${msg.type === 'error' ? msg.body.code : msg.type}`);
        return;
      }
      onFrame(agent, msg);
    });
    ws.on('error', (err) => count(report.errors, `socket: ${err.message.slice(0, 60)}`));
    ws.on('close', (code) => {
      if (agent.welcomed) count(report.closes, String(code));
      agent.welcomed = false;
      settle(false);
      if (stopping) return;
      // As a real agent does: come back after a jittered pause.
      report.reconnects++;
      setTimeout(() => void connect(agent), 1_000 + Math.random() * 2_000);
    });
  });
}

async function inPool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
}

async function enrollAll(): Promise<void> {
  const started = nowMs();
  const identities = await loadIdentities(setup.from, setup.count);
  const call = <T>(path: string, body: unknown, bearer?: string): Promise<T> =>
    requestJson<T>(`${setup.apiUrl}${path}`, {
      ca: setup.caPem,
      body,
      ...(bearer ? { headers: { authorization: `Bearer ${bearer}` } } : {}),
      timeoutMs: 120_000,
    });
  const enrolled: Agent[] = new Array(setup.count);
  await inPool([...identities.keys()], setup.enrollConcurrency, async (k) => {
    const index = setup.from + k;
    // The operator makes a one-time token; the site spends it on its CSR.
    const { token } = await call<{ token: string }>(
      '/v1/enrollment-tokens',
      { ttlSec: 3_600 },
      setup.adminToken,
    );
    const res = await call<{ agentId: string; certificate: string }>('/v1/enroll', {
      token,
      csr: identities[k].csrPem,
      name: `fleet-${index}`,
    });
    enrolled[k] = {
      index,
      identity: identities[k],
      agentId: res.agentId,
      certPem: res.certificate,
      welcomed: false,
      cancelled: new Set(),
    };
  });
  agents = enrolled;
  reply({ type: 'enrolled', ms: nowMs() - started, agentIds: agents.map((a) => a.agentId) });
}

async function connectAll(): Promise<void> {
  const started = nowMs();
  const latencies: number[] = [];
  let failed = 0;
  await inPool(agents, setup.connectConcurrency, async (agent) => {
    const t = nowMs();
    if (await connect(agent)) {
      latencies.push(nowMs() - t);
      return;
    }
    failed++;
    // connect() tries again on its own; this lane waits for that instead of opening a second socket.
    while (!agent.welcomed && !stopping) await new Promise((r) => setTimeout(r, 250));
  });
  latencies.sort((a, b) => a - b);
  reply({
    type: 'connected',
    ms: nowMs() - started,
    latency: {
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      max: latencies.at(-1) ?? 0,
    },
    failed,
  });
}

process.on('message', (msg: ToEmulator) => {
  const fail = (err: unknown): void =>
    reply({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  switch (msg.type) {
    case 'generate': {
      const started = nowMs();
      (async () => {
        for (const c of msg.chunks) await generateChunk(c);
      })().then(() => reply({ type: 'generated', ms: nowMs() - started }), fail);
      return;
    }
    case 'setup':
      setup = msg.setup;
      return;
    case 'enroll':
      enrollAll().catch(fail);
      return;
    case 'connect':
      connectAll().catch(fail);
      return;
    case 'report':
      reply({ type: 'report', report: { ...report, rounds: [...rounds.values()] } });
      return;
    case 'stop':
      stopping = true;
      for (const a of agents) a.ws?.close(1000, 'bench done');
      setTimeout(() => process.exit(0), 2_000).unref();
      return;
  }
});
process.on('disconnect', () => process.exit(0));

// `npm run bench -- serve [--connections 1,10,50] [--batch 1,8] [--duration S] [--json]`: the
// agent's OIP v2 inference endpoint against a plain server (bench/serve-plain.ts) on the same
// model artifact (the 784-200-200-10 MLP), side by side in one run. Each target runs in its own
// process; autocannon drives them one after the other (warm-up, then measurement), in alternating
// order from pass to pass, and requests/s, p50, p99, errors and RSS (idle and peak under load)
// are reported with the ratios to the plain server. `--compare DIR` adds the agent of another
// Loom checkout (DIR with its node_modules) as a third target; `--soak S` instead keeps one load
// for S seconds and reports RSS over time; `--binary` adds this checkout's agent driven with the binary
// tensor data extension (raw FP32 in, raw outputs back), `--grpc` the same agent over gRPC
// (ModelInfer with raw_input_contents, callers on one HTTP/2 channel).
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { stopProcess } from '../cli/agent-process.ts';
import { writeSitePartitions } from '../cli/demo-data.ts';
import { enrollAgent } from '../edge-agent/index.ts';
import { startBenchCoordinator } from './sites.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = resolve(HERE, '..');
const MODEL = 'mnist';
const ARCH = { kind: 'mlp' as const, inputShape: [784], layers: [200, 200, 10], activation: 'relu' as const };

interface Target {
  name: string;
  url: string;
  child: ChildProcess;
  idleRssMiB: number;
  /** Sends the binary tensor data form (raw FP32 in, raw outputs back) instead of JSON. */
  binary?: boolean;
  /** Drives the gRPC API at this `host:port` (ModelInfer with raw_input_contents) instead of REST. */
  grpc?: string;
}

/** What one load run measured. */
interface LoadResult {
  total: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

interface Measured {
  target: string;
  batch: number;
  connections: number;
  pass: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  peakRssMiB: number;
  /** Server CPU time per answered request, in µs: steadier than rates on a shared machine. */
  cpuUsPerRequest: number;
}

/** Resident set size of `pid` in MiB, from /proc (0 where /proc is not there). */
async function rssMiB(pid: number | undefined): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round((kb / 1024) * 10) / 10;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) `pid` has used so far, in ms, from /proc (0 where it is not there). */
async function cpuMs(pid: number | undefined): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/** Spawns `args` with node and resolves with the first JSON line it prints on stdout. */
function spawnJson(
  args: string[],
  logPath: string,
): { child: ChildProcess; ready: Promise<Record<string, unknown>> } {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOOM_LOG_LEVEL: 'warn' },
  });
  child.stderr?.pipe(createWriteStream(logPath));
  const ready = new Promise<Record<string, unknown>>((res, rej) => {
    createInterface({ input: child.stdout! }).once('line', (line) => {
      try {
        res(JSON.parse(line) as Record<string, unknown>);
      } catch {
        rej(new Error(`unexpected first line from ${args.join(' ')}: ${line}`));
      }
    });
    child.once('exit', (code) => rej(new Error(`${args.join(' ')} exited with ${code}; see ${logPath}`)));
  });
  return { child, ready };
}

/** An infer body of `batch` MNIST-like rows (values in [0, 1] with 3 decimals). */
function inferBody(batch: number): string {
  const data = Array.from({ length: batch * 784 }, (_, i) => Math.round(((i * 7919) % 1000) / 1) / 1000);
  return JSON.stringify({ inputs: [{ name: 'input', shape: [batch, 784], datatype: 'FP32', data }] });
}

/** The same rows as `inferBody` in the binary tensor data form, all outputs asked as binary. */
function binaryBody(batch: number): { body: Buffer; headerLength: number } {
  const parsed = JSON.parse(inferBody(batch)) as { inputs: { data: number[] }[] };
  const x = Float32Array.from(parsed.inputs[0].data);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: 'input',
          shape: [batch, 784],
          datatype: 'FP32',
          parameters: { binary_data_size: x.byteLength },
        },
      ],
      parameters: { binary_data_output: true },
    }),
  );
  return { body: Buffer.concat([header, Buffer.from(x.buffer)]), headerLength: header.byteLength };
}

interface Payload {
  json: string;
  binary: { body: Buffer; headerLength: number };
}

function payload(batch: number): Payload {
  return { json: inferBody(batch), binary: binaryBody(batch) };
}

async function load(t: Target, p: Payload, connections: number, seconds: number): Promise<LoadResult> {
  if (t.grpc) return grpcLoad(t.grpc, p, connections, seconds);
  const r = await autocannon({
    url: `${t.url}/v2/models/${MODEL}/infer`,
    method: 'POST',
    headers: t.binary
      ? {
          'content-type': 'application/octet-stream',
          'inference-header-content-length': String(p.binary.headerLength),
        }
      : { 'content-type': 'application/json' },
    body: t.binary ? p.binary.body : p.json,
    connections,
    duration: seconds,
  });
  return {
    total: r.requests.total,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.non2xx + r.timeouts,
  };
}

/** `connections` callers of ModelInfer (raw FP32 in) on one HTTP/2 channel, each one call at a time. */
async function grpcLoad(
  address: string,
  p: Payload,
  connections: number,
  seconds: number,
): Promise<LoadResult> {
  const grpc = await import('@grpc/grpc-js');
  const protoLoader = await import('@grpc/proto-loader');
  const { GRPC_LOADER_OPTIONS, GRPC_PROTO_PATH } = await import('../edge-agent/inference/index.ts');
  const Service = (
    grpc.loadPackageDefinition(protoLoader.loadSync(GRPC_PROTO_PATH, GRPC_LOADER_OPTIONS)) as unknown as {
      inference: {
        GRPCInferenceService: new (
          a: string,
          c: import('@grpc/grpc-js').ChannelCredentials,
        ) => import('@grpc/grpc-js').Client & {
          ModelInfer(req: unknown, cb: (err: Error | null) => void): void;
        };
      };
    }
  ).inference.GRPCInferenceService;
  const client = new Service(address, grpc.credentials.createInsecure());
  const raw = p.binary.body.subarray(p.binary.headerLength);
  const rows = raw.byteLength / (784 * 4);
  const req = {
    model_name: MODEL,
    inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 784] }],
    raw_input_contents: [raw],
  };
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const caller = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const ok = await new Promise<boolean>((res) => client.ModelInfer(req, (err) => res(!err)));
      if (ok) latencies.push(performance.now() - t0);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: connections }, caller));
  client.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return { total: latencies.length, p50Ms: round2(at(0.5)), p99Ms: round2(at(0.99)), errors };
}

async function measure(
  t: Target,
  body: Payload,
  batch: number,
  connections: number,
  pass: number,
  seconds: number,
  warmup: number,
): Promise<Measured> {
  if (warmup > 0) await load(t, body, connections, warmup);
  let peak = 0;
  const sampler = setInterval(async () => {
    peak = Math.max(peak, await rssMiB(t.child.pid));
  }, 250);
  const cpuBefore = await cpuMs(t.child.pid);
  const r = await load(t, body, connections, seconds);
  const cpuUsed = (await cpuMs(t.child.pid)) - cpuBefore;
  clearInterval(sampler);
  peak = Math.max(peak, await rssMiB(t.child.pid));
  return {
    target: t.name,
    batch,
    connections,
    pass,
    requestsPerSec: r.total / seconds,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    errors: r.errors,
    peakRssMiB: peak,
    cpuUsPerRequest: Math.round((cpuUsed * 1000) / Math.max(1, r.total)),
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]
      : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string', default: '1,10,50' },
      batch: { type: 'string', default: '1,8' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '2' },
      passes: { type: 'string', default: '2' },
      compare: { type: 'string' },
      soak: { type: 'string', default: '0' },
      binary: { type: 'boolean', default: false },
      grpc: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const connectionsList = values.connections.split(',').map(Number);
  const batches = values.batch.split(',').map(Number);
  const seconds = Number(values.duration);
  const warmup = Number(values.warmup);
  const passes = Number(values.passes);
  const soak = Number(values.soak);
  const dir = await mkdtemp(join(tmpdir(), 'loom-bench-serve-'));
  const targets: Target[] = [];
  const coordinator = await startBenchCoordinator(dir);
  try {
    const { buildModel, initialWeights, modelTopology, toModelJson, toWeightsBin } = await import(
      '../shared/models/index.ts'
    );
    const first = await initialWeights(ARCH);
    await coordinator.registry.createModel({ name: MODEL, architecture: ARCH, ...first });
    // The plain server loads the same version as a TensorFlow.js artifact.
    const artifact = join(dir, 'artifact');
    await mkdir(artifact);
    const built = await buildModel(ARCH);
    await writeFile(
      join(artifact, 'model.json'),
      JSON.stringify(toModelJson(modelTopology(built), first.weights, 'weights.bin')),
    );
    built.dispose();
    await writeFile(join(artifact, 'weights.bin'), toWeightsBin(first.weights));

    const [part] = await writeSitePartitions(join(dir, 'data'), 1, 'iid', 64);
    const agents: { name: string; root: string }[] = [{ name: 'loom', root: ROOT }];
    let grpcAddress: string | undefined;
    if (values.compare) agents.push({ name: 'loom@compare', root: resolve(values.compare) });
    for (const [i, a] of agents.entries()) {
      const t = await coordinator.enrollment.createToken('bench');
      const dataDir = join(dir, `agent${i}`);
      await enrollAgent({ coordinatorUrl: coordinator.apiUrl, token: t.token, dataDir, name: `a${i}` });
      const p = spawnJson(
        [
          join(a.root, 'cli/loom.js'),
          'agent',
          'start',
          '--data-dir',
          dataDir,
          '--data',
          part.imagesPath,
          '--inference-port',
          '0',
          ...(values.grpc && a.name === 'loom' ? ['--grpc-port', '0'] : []),
          '--json',
        ],
        join(dir, `agent${i}.log`),
      );
      const status = await p.ready;
      targets.push({ name: a.name, url: String(status.inferenceUrl), child: p.child, idleRssMiB: 0 });
      if (typeof status.grpcAddress === 'string') grpcAddress = status.grpcAddress;
    }
    while (coordinator.gateway.onlineAgentIds().length < agents.length)
      await new Promise((r) => setTimeout(r, 50));
    const rollout = await coordinator.rollouts.create(
      {
        model: MODEL,
        version: 1,
        target: { all: true },
        waves: [100],
        policy: { healthWindowSec: 0, maxErrorRate: 1, maxP99Ms: 3_600_000, minRequests: 0 },
      },
      'bench',
    );
    for (;;) {
      const v = await coordinator.rollouts.get(rollout.id);
      if (v.state === 'completed' && v.agents.every((a) => a.state === 'active')) break;
      if (v.state === 'rolled-back') throw new Error(`rollout rolled back: ${v.reason}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const plain = spawnJson(
      ['--import', 'tsx', join(HERE, 'serve-plain.ts'), artifact],
      join(dir, 'plain.log'),
    );
    targets.unshift({
      name: 'plain',
      url: String((await plain.ready).url),
      child: plain.child,
      idleRssMiB: 0,
    });

    // Idle: every target has answered one request (its model is loaded and run), then rests.
    const one = inferBody(1);
    for (const t of targets) {
      const res = await fetch(`${t.url}/v2/models/${MODEL}/infer`, {
        method: 'POST',
        body: one,
        headers: { 'content-type': 'application/json' },
      });
      if (res.status !== 200) throw new Error(`${t.name} answered ${res.status}: ${await res.text()}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    for (const t of targets) t.idleRssMiB = await rssMiB(t.child.pid);

    if (soak > 0) {
      await runSoak(targets, soak, connectionsList[0], batches[0], values.json);
      return;
    }

    // The binary form goes to the same agent processes as the JSON one.
    if (values.binary) {
      for (const t of targets.filter((t) => t.name === 'loom' && !t.grpc))
        targets.push({ ...t, name: `${t.name} binary`, binary: true });
    }
    if (values.grpc && grpcAddress) {
      const loom = targets.find((t) => t.name === 'loom')!;
      targets.push({ ...loom, name: 'loom grpc', grpc: grpcAddress });
    }
    const results: Measured[] = [];
    for (let pass = 0; pass < passes; pass++) {
      for (const batch of batches) {
        const body = payload(batch);
        for (const connections of connectionsList) {
          const order = pass % 2 === 0 ? targets : [...targets].reverse();
          for (const t of order) {
            const m = await measure(t, body, batch, connections, pass, seconds, warmup);
            results.push(m);
            if (!values.json) {
              console.error(
                `pass ${pass + 1} ${batch}x784 c=${connections} ${t.name}: ${m.requestsPerSec.toFixed(0)} req/s p50 ${m.p50Ms} ms p99 ${m.p99Ms} ms errors ${m.errors}, ${m.cpuUsPerRequest} µs CPU a request`,
              );
            }
          }
        }
      }
    }
    report(targets, results, batches, connectionsList, { seconds, warmup, passes }, values.json);
  } finally {
    await Promise.all([...new Set(targets.map((t) => t.child))].map((child) => stopProcess(child)));
    await coordinator.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Row {
  batch: number;
  connections: number;
  target: string;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  cpuUsPerRequest: number;
  rpsRatio?: number;
  p99Ratio?: number;
}

function report(
  targets: Target[],
  results: Measured[],
  batches: number[],
  connectionsList: number[],
  run: { seconds: number; warmup: number; passes: number },
  json: boolean,
): void {
  const rows: Row[] = [];
  for (const batch of batches) {
    for (const connections of connectionsList) {
      const of = (target: string) =>
        results.filter((r) => r.target === target && r.batch === batch && r.connections === connections);
      const plain = of('plain');
      for (const t of targets) {
        const mine = of(t.name);
        const row: Row = {
          batch,
          connections,
          target: t.name,
          requestsPerSec: Math.round(median(mine.map((m) => m.requestsPerSec))),
          p50Ms: median(mine.map((m) => m.p50Ms)),
          p99Ms: median(mine.map((m) => m.p99Ms)),
          errors: mine.reduce((n, m) => n + m.errors, 0),
          cpuUsPerRequest: Math.round(median(mine.map((m) => m.cpuUsPerRequest))),
        };
        if (t.name !== 'plain') {
          // Ratios per pass (the two ran back to back), then their median: load on the shared
          // machine drifts between passes more than within one.
          row.rpsRatio = round2(median(mine.map((m, i) => m.requestsPerSec / plain[i].requestsPerSec)));
          row.p99Ratio = round2(median(mine.map((m, i) => m.p99Ms / Math.max(plain[i].p99Ms, 0.001))));
        }
        rows.push(row);
      }
    }
  }
  const memory = targets.map((t) => ({
    target: t.name,
    idleRssMiB: t.idleRssMiB,
    peakRssMiB: Math.max(0, ...results.filter((r) => r.target === t.name).map((r) => r.peakRssMiB)),
  }));
  if (json) {
    console.log(JSON.stringify({ bench: 'serve', ...run, rows, memory }));
    return;
  }
  console.log(`serve: ${run.passes} passes of ${run.seconds} s after ${run.warmup} s of warm-up, medians`);
  console.log(
    'request  conns  target         req/s    p50 ms   p99 ms  errors  cpu µs/req  req/s ratio  p99 ratio',
  );
  for (const r of rows) {
    console.log(
      `${`${r.batch}x784`.padEnd(8)} ${String(r.connections).padStart(5)}  ${r.target.padEnd(13)} ${String(r.requestsPerSec).padStart(6)} ${r.p50Ms.toFixed(2).padStart(9)} ${r.p99Ms.toFixed(2).padStart(8)} ${String(r.errors).padStart(7)}  ${String(r.cpuUsPerRequest).padStart(10)}  ${r.rpsRatio === undefined ? '' : r.rpsRatio.toFixed(2).padStart(11)}  ${r.p99Ratio === undefined ? '' : r.p99Ratio.toFixed(2).padStart(9)}`,
    );
  }
  for (const m of memory)
    console.log(`RSS ${m.target}: ${m.idleRssMiB} MiB idle, ${m.peakRssMiB} MiB peak under load`);
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Keeps one load on every target in turn for `seconds` and samples RSS each second. */
async function runSoak(
  targets: Target[],
  seconds: number,
  connections: number,
  batch: number,
  json: boolean,
): Promise<void> {
  const body = payload(batch);
  const out: { target: string; idleRssMiB: number; rssMiB: number[]; requests: number; errors: number }[] =
    [];
  for (const t of targets) {
    const samples: number[] = [];
    const sampler = setInterval(async () => samples.push(await rssMiB(t.child.pid)), 1000);
    const r = await load(t, body, connections, seconds);
    clearInterval(sampler);
    out.push({
      target: t.name,
      idleRssMiB: t.idleRssMiB,
      rssMiB: samples,
      requests: r.total,
      errors: r.errors,
    });
  }
  if (json) {
    console.log(JSON.stringify({ bench: 'serve-soak', seconds, connections, batch, targets: out }));
    return;
  }
  for (const o of out) {
    const tenth = Math.max(1, Math.floor(o.rssMiB.length / 10));
    const marks = o.rssMiB.filter((_, i) => i % tenth === 0);
    console.log(
      `soak ${o.target} (${batch}x784, ${connections} connections, ${seconds} s): ${o.requests} requests, ${o.errors} errors; RSS MiB idle ${o.idleRssMiB}, then ${marks.join(' ')}`,
    );
  }
}

// Test fixture: a real coordinator (temp data dir, real PKI, LevelDB, TLS on ephemeral loopback
// ports) and real in-process edge agents enrolled with one-time tokens on small MNIST subsets.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  initCoordinator,
  type RunningCoordinator,
  resolveCoordinatorConfig,
  startCoordinator,
} from '../../coordinator/index.ts';
import type { JobView } from '../../coordinator/jobs/index.ts';
import {
  EdgeAgent,
  type EdgeAgentOptions,
  enrollAgent,
  readMnist,
  writeIdx,
} from '../../edge-agent/index.ts';
import { requestJson } from '../../shared/http/index.ts';
import { createLogger } from '../../shared/log/index.ts';

export interface TestCluster {
  dir: string;
  coordinator: RunningCoordinator;
  adminToken: string;
  caPem: string;
  apiUrl: string;
  /** Calls the operator API as admin. */
  api<T>(path: string, body?: unknown, method?: string): Promise<T>;
  /** Enrolls a new agent and returns its data dir (`force` replaces an identity already there). */
  enroll(
    name: string,
    opts?: { force?: boolean; labels?: Record<string, string> },
  ): Promise<{ dataDir: string; agentId: string }>;
  /** Enrolls and starts an in-process agent on MNIST training examples [offset, offset+count). */
  startAgent(name: string, opts: { offset: number; count: number }): Promise<EdgeAgent>;
  /** Enrolls and starts an in-process agent on the data `writeData` puts in its data dir (returns the path). */
  startAgentWith(
    name: string,
    writeData: (dataDir: string) => Promise<string>,
    opts?: { labels?: Record<string, string> },
  ): Promise<EdgeAgent>;
  waitForAgents(count: number, timeoutMs?: number): Promise<void>;
  /** Polls `GET /v1/jobs/:id` until the job completes, fails or is cancelled (default 90 s). */
  waitForJob(id: string, timeoutMs?: number): Promise<JobView>;
  /** Starts the coordinator again on the same data dir and ports (after `coordinator.stop()`). */
  restartCoordinator(): Promise<void>;
  close(): Promise<void>;
}

const silent = createLogger('silent');

/** Writes MNIST training examples [offset, offset+count) as IDX files; returns the images path. */
export async function writeMnistSubset(dir: string, offset: number, count: number): Promise<string> {
  const slice = await readMnist('train', { offset, limit: count });
  const imagesPath = join(dir, 'train-images-idx3-ubyte');
  await writeIdx(
    imagesPath,
    join(dir, 'train-labels-idx1-ubyte'),
    slice.images,
    slice.labels,
    slice.rows,
    slice.cols,
  );
  return imagesPath;
}

/**
 * Opens a raw mTLS WebSocket to the agent gateway with the given credentials and resolves with
 * 101 when the upgrade succeeds, the HTTP status when it is refused, or -1 on a TLS failure.
 */
export function tryConnect(url: string, certPem: string, keyPem: string, caPem: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { cert: certPem, key: keyPem, ca: [caPem] });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', () => resolve(-1));
  });
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every 25 ms until it returns true; throws after `timeoutMs` (default 20 s). */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export async function startTestCluster(
  opts: {
    heartbeatIntervalMs?: number;
    /** How often running rollouts are judged (default: the coordinator's, 500 ms). */
    rolloutTickMs?: number;
    /** Chunk size of large payloads (default: the coordinator's, 8 MiB; at least 64 KiB). */
    chunkBytes?: number;
    /** Options every agent the cluster starts gets (a short health interval, say). */
    agentOptions?: Partial<Omit<EdgeAgentOptions, 'dataDir' | 'dataPath' | 'log'>>;
  } = {},
): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'loom-test-'));
  const dataDir = join(dir, 'coordinator');
  const init = await initCoordinator({ dataDir, hosts: ['localhost', '127.0.0.1'] });
  const config = await resolveCoordinatorConfig(dataDir, {
    host: '127.0.0.1',
    apiPort: 0,
    agentPort: 0,
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 10_000,
    ...(opts.rolloutTickMs ? { rolloutTickMs: opts.rolloutTickMs } : {}),
    ...(opts.chunkBytes ? { chunkBytes: opts.chunkBytes } : {}),
  });
  let coordinator = await startCoordinator(config, silent);
  const apiUrl = `https://127.0.0.1:${coordinator.apiPort}`;
  const caPem = (await requestJson<{ caCertificate: string }>(`${apiUrl}/v1/ca`, { insecure: true }))
    .caCertificate;
  const agents: EdgeAgent[] = [];
  const api = <T>(path: string, body?: unknown, method?: string): Promise<T> =>
    requestJson<T>(`${apiUrl}${path}`, {
      ca: caPem,
      headers: { authorization: `Bearer ${init.adminToken}` },
      ...(body === undefined ? {} : { body }),
      ...(method ? { method } : {}),
    });
  const enroll = async (
    name: string,
    opts: { force?: boolean; labels?: Record<string, string> } = {},
  ): Promise<{ dataDir: string; agentId: string }> => {
    const { token } = await api<{ token: string }>('/v1/enrollment-tokens', {});
    const agentDir = join(dir, 'agents', name);
    const id = await enrollAgent({ coordinatorUrl: apiUrl, token, dataDir: agentDir, name, ...opts });
    return { dataDir: agentDir, agentId: id.agentId };
  };
  async function startAgentWith(
    name: string,
    writeData: (dataDir: string) => Promise<string>,
    agentOpts: { labels?: Record<string, string> } = {},
  ): Promise<EdgeAgent> {
    const { dataDir: agentDir } = await enroll(name, agentOpts.labels ? { labels: agentOpts.labels } : {});
    const dataPath = await writeData(agentDir);
    const agent = new EdgeAgent({
      inferencePort: 0,
      // Many agents share the test machine's cores: one training thread each.
      trainingThreads: 1,
      ...opts.agentOptions,
      dataDir: agentDir,
      dataPath,
      log: silent,
    });
    await agent.start();
    agents.push(agent);
    return agent;
  }
  return {
    dir,
    get coordinator() {
      return coordinator;
    },
    adminToken: init.adminToken,
    caPem,
    apiUrl,
    api,
    enroll,
    startAgent: (name, subset) =>
      startAgentWith(name, (agentDir) => writeMnistSubset(agentDir, subset.offset, subset.count)),
    startAgentWith,
    async waitForJob(id, timeoutMs = 90_000) {
      let job: JobView | undefined;
      await waitUntil(
        async () => {
          job = await api<JobView>(`/v1/jobs/${id}`);
          return ['completed', 'failed', 'cancelled'].includes(job.state);
        },
        timeoutMs,
        `job ${id} to finish`,
      );
      return job!;
    },
    async waitForAgents(count, timeoutMs = 20_000) {
      await waitUntil(
        () => coordinator.gateway.onlineAgentIds().length >= count,
        timeoutMs,
        `${count} agents online`,
      );
    },
    async restartCoordinator() {
      await coordinator.stop();
      const { dataDir: _same, ...settings } = config;
      const again = await resolveCoordinatorConfig(dataDir, {
        ...settings,
        apiPort: coordinator.apiPort,
        agentPort: coordinator.agentPort,
      });
      coordinator = await startCoordinator(again, silent);
    },
    async close() {
      await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
      await coordinator.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

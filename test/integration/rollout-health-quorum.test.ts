// Rollout waves judge each agent's serving health on its own and fail only on a quorum, through
// the real gateway: one enrolled but malicious agent that reports made-up failures cannot sink a
// wave of honest sites (it is marked failed with its reason), while a wave of that agent alone
// still fails; callers' bad input (4xx) never counts as an error; crafted serving-health reports
// are refused with a stable code and never crash the coordinator.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutView } from '../../coordinator/rollouts/index.ts';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import { HEALTH_LATENCY_BUCKETS_MS, type Message } from '../../shared/protocol/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';
import { type RogueAgent, startRogueAgent } from '../helpers/rogue-agent.ts';

const FEATURES = 4;
const ARCH: ModelArchitecture = { kind: 'logistic', inputShape: [FEATURES], classes: 3 };
const BUCKETS = HEALTH_LATENCY_BUCKETS_MS.length + 1;

let cluster: TestCluster;
const honest: EdgeAgent[] = [];
let rogue: RogueAgent;
/** Error frames the rogue was sent. */
const refusals: { code: string; message: string }[] = [];
/** Versions of `probe` the rogue says it runs (it acknowledges every deployment). */
const rogueRuns = new Set<number>();

function csv(): string {
  const rows = Array.from({ length: 12 }, (_, r) => [
    ...Array.from({ length: FEATURES }, (_, c) => Math.sin(r + c)),
    r % 3,
  ]);
  return `${[...Array.from({ length: FEATURES }, (_, c) => `x${c}`), 'label'].join(',')}\n${rows.map((r) => r.join(',')).join('\n')}\n`;
}

/** A report of `requests` predictions of `version`, `errors` of them failed, all in the 5 ms bucket. */
function report(version: number, requests: number, errors: number) {
  const latency = new Array(BUCKETS).fill(0);
  latency[2] = requests;
  return { intervalMs: 150, versions: [{ name: 'probe', version, requests, errors, latency }] };
}

async function infer(agent: EdgeAgent, body: unknown): Promise<number> {
  const res = await fetch(`${agent.status().inferenceUrl}/v2/models/probe/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

const good = {
  inputs: [{ name: 'input', shape: [1, FEATURES], datatype: 'FP32', data: new Array(FEATURES).fill(0.5) }],
};
/** The caller's fault: a wrong shape (400). */
const misshapen = {
  inputs: [
    { name: 'input', shape: [1, FEATURES + 1], datatype: 'FP32', data: new Array(FEATURES + 1).fill(0.5) },
  ],
};

async function addVersion(scale: number): Promise<number> {
  const base = await cluster.coordinator.registry.getWeights('probe', 1);
  const v = await cluster.coordinator.registry.addVersion({
    model: 'probe',
    parentVersion: 1,
    jobId: null,
    round: null,
    agents: [],
    exampleCounts: {},
    metrics: {},
    weights: base.map((w) => ({ ...w, data: w.data.map((x) => x * scale) })),
  });
  return v.version;
}

async function waitForRollout(
  id: string,
  done: (r: RolloutView) => boolean,
  what: string,
): Promise<RolloutView> {
  let last: RolloutView | undefined;
  await waitUntil(
    async () => {
      last = await cluster.coordinator.rollouts.get(id);
      return done(last);
    },
    45_000,
    what,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; rollout is ${JSON.stringify(last)}`);
  });
  return last!;
}

/** Sends made-up failures for every version the rogue runs, until `stop` resolves. */
function lieAbout(version: number, until: Promise<unknown>): Promise<void> {
  let lying = true;
  void until.finally(() => {
    lying = false;
  });
  return (async () => {
    while (lying) {
      if (rogueRuns.has(version)) rogue.connection.send('serving-health', report(version, 40, 40));
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
}

beforeAll(async () => {
  cluster = await startTestCluster({ rolloutTickMs: 50, agentOptions: { healthIntervalMs: 150 } });
  for (const name of ['clinic-1', 'clinic-2', 'clinic-3']) {
    honest.push(
      await cluster.startAgentWith(name, async (dataDir) => {
        const path = join(dataDir, 'data.csv');
        await writeFile(path, csv());
        return path;
      }),
    );
  }
  rogue = await startRogueAgent(cluster, 'liar', { declared: 12, answer: () => undefined });
  rogue.connection.on('message', (msg: Message) => {
    if (msg.type === 'error') refusals.push(msg.body as { code: string; message: string });
    if (msg.type === 'deploy' || msg.type === 'activate') {
      const { name, version } = msg.body.model;
      rogueRuns.clear();
      rogueRuns.add(version);
      rogue.connection.send('deploy-ack', { name, version, ok: true });
    }
  });
  await cluster.waitForAgents(4);
  await cluster.api('/v1/models', { name: 'probe', architecture: ARCH });
}, 60_000);

afterAll(async () => {
  await Promise.all([...honest.map((a) => a.stop().catch(() => undefined)), rogue?.stop()]);
  await cluster?.close();
});

describe('a rollout wave with one agent that lies about its health', () => {
  it('passes on the honest agents and marks the liar failed with its reason', async () => {
    const version = await addVersion(0.5);
    const created = await cluster.api<RolloutView>('/v1/rollouts', {
      model: 'probe',
      version,
      target: { all: true },
      healthWindowSec: 1.5,
      maxErrorRate: 0.05,
      minRequests: 8,
    });
    expect(created.policy.failQuorum).toBe(0.5);
    const [quiet, ...busy] = honest;
    let traffic = true;
    const load = (async () => {
      while (traffic) {
        await Promise.all([
          ...busy.map((a) => infer(a, good)),
          // One site's callers send only malformed requests: their fault, not the version's.
          infer(quiet, misshapen),
        ]);
      }
    })();
    const finished = new Promise<RolloutView>((resolve, reject) => {
      waitForRollout(created.id, (r) => r.state !== 'running', 'the rollout to end').then(resolve, reject);
    });
    const lies = lieAbout(version, finished);
    const r = await finished;
    traffic = false;
    await Promise.all([load, lies]);
    expect(r.state).toBe('completed');
    expect(await infer(quiet, misshapen)).toBe(400);
    const liar = r.agents.find((a) => a.id === rogue.agentId)!;
    expect(liar).toMatchObject({ state: 'failed', unhealthy: true });
    expect(liar.reason).toMatch(
      /^unhealthy: error rate 1\.0000 \(\d+ of \d+ predictions failed\) is above maxErrorRate 0\.05/,
    );
    for (const a of r.agents.filter((a) => a.id !== rogue.agentId)) expect(a.state).toBe('active');
    expect(r.waves[0].note).toMatch(/1 of 4 agents failing, within failQuorum 0\.5/);
    // The site whose callers only sent bad input counted no error (and no prediction) against the version.
    const quietAgent = r.agents.find((a) => a.id === quiet.status().agentId)!;
    expect(quietAgent.health?.errors ?? 0).toBe(0);
    expect(quietAgent.health?.requests ?? 0).toBe(0);
    const busyHealth = r.agents.filter((a) => busy.some((b) => b.status().agentId === a.id));
    expect(busyHealth.every((a) => (a.health?.requests ?? 0) > 0 && a.health?.errors === 0)).toBe(true);
  }, 60_000);

  it('still fails a wave of that agent alone', async () => {
    const version = await addVersion(0.25);
    const created = await cluster.api<RolloutView>('/v1/rollouts', {
      model: 'probe',
      version,
      target: { agents: [rogue.agentId] },
      healthWindowSec: 30,
      maxErrorRate: 0.05,
    });
    const finished = waitForRollout(created.id, (r) => r.state !== 'running', 'the rollout to end');
    const lies = lieAbout(version, finished);
    const r = await finished;
    await lies;
    expect(r.state).toBe('rolled-back');
    expect(r.reason).toMatch(
      /wave 1 is unhealthy: error rate 1\.0000 .* at agent agent-[0-9a-f]+; 1 of 1 agent\(s\) failing, more than failQuorum 0\.5/,
    );
  }, 60_000);

  it('with failQuorum 0, fails on any one agent, as before', async () => {
    const version = await addVersion(0.125);
    const created = await cluster.api<RolloutView>('/v1/rollouts', {
      model: 'probe',
      version,
      target: { all: true },
      healthWindowSec: 30,
      maxErrorRate: 0.05,
      failQuorum: 0,
    });
    const finished = waitForRollout(created.id, (r) => r.state !== 'running', 'the rollout to end');
    const lies = lieAbout(version, finished);
    const r = await finished;
    await lies;
    expect(r.state).toBe('rolled-back');
    expect(r.reason).toMatch(/1 of 4 agent\(s\) failing, more than failQuorum 0/);
  }, 60_000);
});

describe('a coordinator restart in the middle of a health window', () => {
  it('resumes the window with the counts seen before it, saved with the wave', async () => {
    const version = await addVersion(0.75);
    const created = await cluster.api<RolloutView>('/v1/rollouts', {
      model: 'probe',
      version,
      target: { agents: honest.map((a) => a.status().agentId) },
      healthWindowSec: 6,
      maxErrorRate: 0.05,
    });
    let traffic = true;
    const load = (async () => {
      while (traffic) {
        await Promise.all(honest.map((a) => infer(a, good)));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const saved = (r: RolloutView): number => r.agents.reduce((n, a) => n + (a.health?.requests ?? 0), 0);
    const before = await waitForRollout(
      created.id,
      (r) => r.waves[0].observingSince !== undefined && saved(r) >= 20,
      'counts saved with the wave',
    );
    await cluster.restartCoordinator();
    // What the restarted coordinator read from its store: the same window, and the counts so far.
    const after = await cluster.coordinator.rollouts.get(created.id);
    expect(after.state).toBe('running');
    expect(after.waves[0].observingSince).toBe(before.waves[0].observingSince);
    expect(saved(after)).toBeGreaterThanOrEqual(saved(before));
    const r = await waitForRollout(created.id, (r) => r.state !== 'running', 'the rollout to end');
    traffic = false;
    await load;
    expect(r.state).toBe('completed');
    expect(r.waves[0].observingSince).toBe(before.waves[0].observingSince);
    // The pass counted what was seen before the restart too.
    expect(r.waves[0].health!.requests).toBeGreaterThanOrEqual(saved(before));
    expect(Date.parse(r.waves[0].endedAt!) - Date.parse(r.waves[0].observingSince!)).toBeGreaterThanOrEqual(
      6000,
    );
  }, 90_000);
});

describe('crafted serving-health reports', () => {
  const coordinatorAnswers = async (): Promise<void> => {
    expect((await cluster.api<{ status: string }>('/healthz')).status).toBeDefined();
  };

  it('are refused with LOOM_ERR_HEALTH_REPORT when they name a version twice or come too fast, on a link that stays open', async () => {
    refusals.length = 0;
    const twice = report(1, 1, 0);
    twice.versions.push({ ...twice.versions[0] });
    rogue.connection.send('serving-health', twice);
    await waitUntil(() => refusals.length > 0, 10_000, 'the refusal');
    expect(refusals[0]).toMatchObject({
      code: 'LOOM_ERR_HEALTH_REPORT',
      message: expect.stringMatching(/names probe@1 twice/),
    });
    refusals.length = 0;
    for (let i = 0; i < 40; i++) rogue.connection.send('serving-health', report(1, 1, 0));
    await waitUntil(() => refusals.length >= 20, 10_000, 'the flood refused');
    expect(refusals.every((r) => r.code === 'LOOM_ERR_HEALTH_REPORT')).toBe(true);
    expect(refusals[0].message).toMatch(/serving-health reports a second/);
    expect(cluster.coordinator.gateway.session(rogue.agentId)?.isClosed).toBe(false);
    await coordinatorAnswers();
  });

  it('with impossible counts are refused with LOOM_ERR_PROTOCOL and the link closed, the coordinator unharmed', async () => {
    const bad: unknown[] = [
      {
        intervalMs: 150,
        versions: [
          { name: 'probe', version: 1, requests: -1, errors: 0, latency: new Array(BUCKETS).fill(0) },
        ],
      },
      { ...report(1, 3, 4) },
      {
        intervalMs: 150,
        versions: [
          { name: 'probe', version: 1, requests: 1.5, errors: 0, latency: new Array(BUCKETS).fill(0) },
        ],
      },
      { intervalMs: 150, versions: [{ name: 'probe', version: 1, requests: 2, errors: 0, latency: [2] }] },
      {
        intervalMs: 150,
        versions: [
          { name: 'probe', version: 1, requests: 2, errors: 0, latency: new Array(BUCKETS).fill(1) },
        ],
      },
      {
        intervalMs: 150,
        versions: [
          { name: 'probe', version: 1, requests: 2 ** 60, errors: 0, latency: new Array(BUCKETS).fill(0) },
        ],
      },
    ];
    for (const body of bad) {
      let session: ReturnType<typeof cluster.coordinator.gateway.session>;
      await waitUntil(
        () => {
          session = cluster.coordinator.gateway.session(rogue.agentId);
          if (!session || session.isClosed) return false;
          refusals.length = 0;
          try {
            // biome-ignore lint/suspicious/noExplicitAny: a crafted body the types would refuse
            rogue.connection.send('serving-health', body as any);
            return true;
          } catch {
            return false; // the rogue's side has not seen its new link yet
          }
        },
        30_000,
        'the crafted report sent on a live link',
      );
      await waitUntil(() => session!.isClosed, 10_000, 'the link closed');
      expect(refusals[0]?.code).toBe('LOOM_ERR_PROTOCOL');
      await coordinatorAnswers();
    }
  }, 120_000);
});

// Following a job as it runs: the server-sent event stream (snapshot, then every step, resumable
// with Last-Event-ID), the round in progress in GET /v1/jobs/:id, a site whose data is scaled
// unlike the others' warned about before it trains, a site whose data cannot serve the model
// declining for good, and a cancel that keeps what the round had.

import { writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobEvent, JobView } from '../../coordinator/jobs/index.ts';
import { readMnist } from '../../edge-agent/index.ts';
import { startTestCluster, type TestCluster, waitUntil } from '../helpers/cluster.ts';
import { type RogueAgent, startRogueAgent } from '../helpers/rogue-agent.ts';

const ARCH = { kind: 'mlp', inputShape: [784], layers: [16, 10], activation: 'relu' };

interface SseEvent {
  id?: string;
  event: string;
  data: unknown;
}

/** Reads a server-sent event stream with a plain https request until `until` says stop. */
function readEvents(
  cluster: TestCluster,
  path: string,
  until: (e: SseEvent, all: SseEvent[]) => boolean,
  headers: Record<string, string> = {},
): Promise<{ events: SseEvent[]; contentType: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, cluster.apiUrl);
    const req = request(
      url,
      { ca: cluster.caPem, headers: { authorization: `Bearer ${cluster.adminToken}`, ...headers } },
      (res) => {
        const events: SseEvent[] = [];
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            const fields = Object.fromEntries(
              block
                .split('\n')
                .filter((l) => !l.startsWith(':') && l.includes(':'))
                .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trimStart()]),
            );
            if (!fields.event) continue;
            const e: SseEvent = {
              event: fields.event,
              data: JSON.parse(fields.data),
              ...(fields.id ? { id: fields.id } : {}),
            };
            events.push(e);
            if (until(e, events)) {
              req.destroy();
              resolve({ events, contentType: String(res.headers['content-type']) });
              return;
            }
          }
        });
        res.on('end', () => resolve({ events, contentType: String(res.headers['content-type']) }));
      },
    );
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
    req.end();
  });
}

let cluster: TestCluster;
let scaledId: string;
let narrowId: string;
let honestIds: string[];

/** A CSV of MNIST examples [offset, offset+count) with `features` columns of pixels divided by `divide`. */
async function mnistCsv(
  path: string,
  offset: number,
  count: number,
  features: number,
  divide: number,
): Promise<string> {
  const slice = await readMnist('train', { offset, limit: count });
  const header = [...Array.from({ length: features }, (_, i) => `p${i}`), 'label'].join(',');
  const rows = Array.from({ length: count }, (_, r) =>
    [...Array.from({ length: features }, (_, i) => slice.images[r * 784 + i] / divide), slice.labels[r]].join(
      ',',
    ),
  );
  await writeFile(path, `${header}\n${rows.join('\n')}\n`);
  return path;
}

beforeAll(async () => {
  cluster = await startTestCluster();
  const honest = [
    await cluster.startAgent('site-1', { offset: 0, count: 300 }),
    await cluster.startAgent('site-2', { offset: 300, count: 300 }),
    await cluster.startAgent('site-3', { offset: 600, count: 300 }),
  ];
  honestIds = honest.map((a) => a.status().agentId);
  // Pixels 0–255 where the others send 0–1: the mistake that turned a 92.5% model into 26.1%.
  const scaled = await cluster.startAgentWith('site-raw', (dir) =>
    mnistCsv(join(dir, 'raw.csv'), 900, 300, 784, 1),
  );
  scaledId = scaled.status().agentId;
  // 783 features for a 784-input model: it can never train this model.
  const narrow = await cluster.startAgentWith('site-narrow', (dir) =>
    mnistCsv(join(dir, 'narrow.csv'), 1200, 100, 783, 255),
  );
  narrowId = narrow.status().agentId;
  await cluster.waitForAgents(5);
  await cluster.api('/v1/models', { name: 'digits', architecture: ARCH });
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

describe('a running job, followed', () => {
  let jobId: string;
  let events: SseEvent[];

  it('streams a snapshot, then every step of every round until the job ends', async () => {
    const { id } = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 2,
      minClients: 3,
      roundTimeoutSec: 60,
      learningRate: 0.1,
    });
    jobId = id;
    let during: JobView | undefined;
    const stream = await readEvents(cluster, `/v1/jobs/${id}/events`, (e) => {
      // The round in progress, as GET /v1/jobs/:id shows it, is read the moment a round starts.
      if (e.event === 'round-started' && !during) {
        void cluster.api<JobView>(`/v1/jobs/${id}`).then((v) => {
          during = v;
        });
      }
      return e.event === 'job-finished';
    });
    events = stream.events;
    expect(stream.contentType).toMatch(/^text\/event-stream/);
    expect(events[0].event).toBe('snapshot');
    expect(events.at(-1)).toMatchObject({ event: 'job-finished', data: { state: 'completed' } });
    const seqs = events.slice(1).map((e) => Number(e.id));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    const kinds = events.map((e) => e.event);
    for (const k of ['round-started', 'task-sent', 'update-received', 'round-ended'])
      expect(kinds).toContain(k);
    expect(kinds.filter((k) => k === 'round-ended')).toHaveLength(2);

    await waitUntil(() => during !== undefined, 10_000, 'the job read during its round');
    expect(during?.roundInProgress).toMatchObject({ round: 1, state: 'collecting', minClients: 3 });
    expect(during?.roundInProgress?.sampled.length).toBeGreaterThan(0);
  });

  it('warned about the site whose data is scaled unlike the others, before it was sent a task', () => {
    const warning = events.findIndex(
      (e) => e.event === 'data-warning' && (e.data as JobEvent & { agentId: string }).agentId === scaledId,
    );
    const firstTask = events.findIndex(
      (e) => e.event === 'task-sent' && (e.data as { agentId: string }).agentId === scaledId,
    );
    expect(warning).toBeGreaterThan(0);
    expect(firstTask === -1 || warning < firstTask).toBe(true);
    expect((events[warning].data as { message: string }).message).toMatch(
      /reach 255 while the other \d sites' reach about 1/,
    );
  });

  it('let the site whose data cannot serve the model decline once, and never asked it again', async () => {
    const asked = events.filter(
      (e) => e.event === 'task-sent' && (e.data as { agentId: string }).agentId === narrowId,
    );
    expect(asked).toHaveLength(1);
    expect(
      events.find((e) => e.event === 'agent-failed' && (e.data as { agentId: string }).agentId === narrowId)
        ?.data,
    ).toMatchObject({
      permanent: true,
      reason: expect.stringMatching(/LOOM_ERR_DATA.*783 features.*784/),
    });
    const job = await cluster.api<JobView>(`/v1/jobs/${jobId}`);
    expect(job.excludedAgents[narrowId]).toMatchObject({ round: 1, code: 'LOOM_ERR_TASK_FAILED' });
    expect(job.warnings).toEqual([expect.objectContaining({ kind: 'data-mismatch', agentId: scaledId })]);
    expect(job.roundInProgress).toBeUndefined();
    // Round 2 went on without it.
    expect(job.rounds[1].sampled).not.toContain(narrowId);
    for (const id of honestIds) expect(job.rounds[1].sampled).toContain(id);
  });

  it('resumes the stream after Last-Event-ID, and ends at once for a finished job', async () => {
    const { events: again } = await readEvents(
      cluster,
      `/v1/jobs/${jobId}/events`,
      (e) => e.event === 'job-finished',
      {
        'last-event-id': events[3].id!,
      },
    );
    expect(again[0].event).toBe('snapshot');
    expect(Number(again[1].id)).toBe(Number(events[3].id) + 1);
    expect(again.at(-1)?.event).toBe('job-finished');
  });
});

describe('a cancelled job', () => {
  let silent: RogueAgent;
  afterAll(async () => {
    await silent?.stop();
  });

  it('keeps the failures and outcomes of the round it was in', async () => {
    // An agent that takes tasks and never answers holds the round open until it is cancelled.
    silent = await startRogueAgent(cluster, 'silent', { declared: 300, answer: () => undefined });
    await cluster.waitForAgents(6);
    const { id } = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 3,
      minClients: 6,
      roundTimeoutSec: 120,
      learningRate: 0.1,
    });
    await waitUntil(
      async () => {
        const p = (await cluster.api<JobView>(`/v1/jobs/${id}`)).roundInProgress;
        return p !== undefined && p.reported.length >= 3 && p.failures.some((f) => f.agentId === narrowId);
      },
      30_000,
      'the honest updates and the decline',
    );
    const cancelled = await cluster.api<JobView>(`/v1/jobs/${id}/cancel`, {});
    expect(cancelled.state).toBe('cancelled');
    const job = await cluster.api<JobView>(`/v1/jobs/${id}`);
    expect(job.rounds).toHaveLength(1);
    expect(job.rounds[0]).toMatchObject({
      round: 1,
      state: 'cancelled',
      error: { code: 'LOOM_ERR_JOB_CANCELLED' },
    });
    expect(job.rounds[0].failures).toContainEqual(
      expect.objectContaining({ agentId: narrowId, permanent: true }),
    );
    expect(job.rounds[0].participants.map((p) => p.agentId)).toEqual(expect.arrayContaining(honestIds));
    expect(job.rounds[0].sampled).toContain(silent.agentId);
  });
});

// /v1/jobs: start, list, inspect, follow (server-sent events) and cancel federated training jobs.
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { type JobEvent, parseJobConfig } from '../jobs/index.ts';
import { requireRole } from './auth.ts';
import type { ApiDeps, ApiEnv } from './context.ts';
import { readJsonBody } from './errors.ts';
import { readListQuery, refuseQuery } from './list-query.ts';

const JOB_STATES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;

/** Comment lines keep idle event streams open through proxies that cut silent connections. */
const KEEPALIVE_MS = 15_000;

export function jobsRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/', requireRole('operator'), async (c) => {
    refuseQuery(c);
    const config = parseJobConfig(await readJsonBody(c));
    const job = await deps.jobs.create(config, c.get('caller').name);
    return c.json(job, 201);
  });

  app.get('/', async (c) => {
    const query = readListQuery(c, { state: JOB_STATES, model: 'string' });
    // One more than a page, to know whether there is a next one.
    const jobs = await deps.jobs.list({
      ...(query.filters.state ? { state: query.filters.state as (typeof JOB_STATES)[number] } : {}),
      ...(query.filters.model ? { model: query.filters.model } : {}),
      ...(query.after ? { after: query.after } : {}),
      limit: query.limit + 1,
    });
    const items = jobs.slice(0, query.limit);
    return c.json({
      jobs: items,
      ...(jobs.length > query.limit ? { next: items[items.length - 1].id } : {}),
    });
  });

  app.get('/:id', async (c) => {
    refuseQuery(c);
    return c.json(await deps.jobs.get(c.req.param('id')));
  });

  // Server-sent events: a `snapshot` of the job first, then every step as it happens, until the
  // job ends. `Last-Event-ID` (or ?after=SEQ) resumes after the events a client already has.
  app.get('/:id/events', async (c) => {
    const query = readListQuery(c, {}, {});
    const id = c.req.param('id');
    const view = await deps.jobs.get(id);
    const header = c.req.header('last-event-id');
    const after = Number(query.after ?? header ?? 0);
    const from = Number.isSafeInteger(after) && after > 0 ? after : 0;
    return streamSSE(c, async (stream) => {
      const queue: JobEvent[] = [];
      let wake: (() => void) | undefined;
      const onEvent = (event: JobEvent): void => {
        if (event.jobId !== id) return;
        queue.push(event);
        wake?.();
      };
      deps.jobs.on('event', onEvent);
      let open = true;
      stream.onAbort(() => {
        open = false;
        wake?.();
      });
      try {
        await stream.writeSSE({ event: 'snapshot', data: JSON.stringify(view) });
        // Events already kept in memory that the client has not seen, then live ones; a buffered
        // event may also arrive live, so each is written once by its seq.
        queue.unshift(...deps.jobs.eventsAfter(id, from));
        let sent = from;
        const finished = (): boolean => !deps.jobs.isRunning(id);
        while (open) {
          while (queue.length > 0) {
            const event = queue.shift()!;
            if (event.seq <= sent) continue;
            sent = event.seq;
            await stream.writeSSE({ id: String(event.seq), event: event.type, data: JSON.stringify(event) });
            if (event.type === 'job-finished') return;
          }
          if (finished()) {
            // A job that ended before this stream (or whose end left the buffer) ends the stream too.
            const job = await deps.jobs.get(id);
            await stream.writeSSE({
              event: 'job-finished',
              data: JSON.stringify({
                jobId: id,
                type: 'job-finished',
                state: job.state,
                latestVersion: job.latestVersion,
                error: job.error,
              }),
            });
            return;
          }
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, KEEPALIVE_MS);
            timer.unref();
          });
          clearTimeout(timer);
          wake = undefined;
          if (open && queue.length === 0 && !finished()) await stream.write(': keep-alive\n\n');
        }
      } finally {
        deps.jobs.off('event', onEvent);
      }
    });
  });

  app.post('/:id/cancel', requireRole('operator'), async (c) => {
    refuseQuery(c);
    return c.json(await deps.jobs.cancel(c.req.param('id'), c.get('caller').name));
  });

  return app;
}

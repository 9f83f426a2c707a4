// /v1/jobs: start, list, inspect, follow (server-sent events) and cancel federated training jobs.
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { IdParams, JobCreateBody, JobList, JobView, jobListFilters } from '../../shared/api-schemas/index.ts';
import { type JobEvent, jobConfigOf } from '../jobs/index.ts';
import type { ApiDeps } from './context.ts';
import { type ApiRouter, apiRouter, defineRoute } from './route-spec.ts';

const TAG = 'jobs';

/** Comment lines keep idle event streams open through proxies that cut silent connections. */
const KEEPALIVE_MS = 15_000;

export function jobsRoutes(deps: ApiDeps): ApiRouter {
  const app = apiRouter();

  defineRoute(
    app,
    {
      method: 'post',
      path: '/',
      summary: 'Start a federated training job',
      tag: TAG,
      role: 'operator',
      body: JobCreateBody,
      responses: { 201: { description: 'The job', schema: JobView } },
    },
    async (c, { body }) => {
      const job = await deps.jobs.create(jobConfigOf(body), c.get('caller').name);
      return c.json(job, 201);
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/',
      summary: 'List jobs, newest first, without their rounds (filters: state, model)',
      tag: TAG,
      query: { filters: jobListFilters },
      responses: { 200: { description: 'One page of jobs', schema: JobList } },
    },
    async (c, { query }) => {
      // One more than a page, to know whether there is a next one.
      const jobs = await deps.jobs.list({
        ...(query.filters.state
          ? { state: query.filters.state as (typeof jobListFilters.state)[number] }
          : {}),
        ...(query.filters.model ? { model: query.filters.model } : {}),
        ...(query.after ? { after: query.after } : {}),
        limit: query.limit + 1,
      });
      const items = jobs.slice(0, query.limit);
      return c.json({
        jobs: items,
        ...(jobs.length > query.limit ? { next: items[items.length - 1].id } : {}),
      });
    },
  );

  defineRoute(
    app,
    {
      method: 'get',
      path: '/:id',
      summary: 'One job with every round and the round in progress',
      tag: TAG,
      params: IdParams,
      responses: { 200: { description: 'The job', schema: JobView } },
    },
    async (c, { params }) => c.json(await deps.jobs.get(params.id)),
  );

  // Server-sent events: a `snapshot` of the job first, then every step as it happens, until the
  // job ends. `Last-Event-ID` (or ?after=SEQ) resumes after the events a client already has.
  defineRoute(
    app,
    {
      method: 'get',
      path: '/:id/events',
      summary: "A job's progress as server-sent events: a snapshot, then every event until it ends",
      tag: TAG,
      params: IdParams,
      query: { filters: {} },
      responses: {
        200: {
          description: 'text/event-stream; `after` or Last-Event-ID resumes after that event seq',
          schema: z.string(),
          contentType: 'text/event-stream',
        },
      },
    },
    async (c, { params, query }) => {
      const id = params.id;
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
              await stream.writeSSE({
                id: String(event.seq),
                event: event.type,
                data: JSON.stringify(event),
              });
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
    },
  );

  defineRoute(
    app,
    {
      method: 'post',
      path: '/:id/cancel',
      summary: 'Cancel a pending or running job',
      tag: TAG,
      role: 'operator',
      params: IdParams,
      responses: { 200: { description: 'The cancelled job', schema: JobView } },
    },
    async (c, { params }) => c.json(await deps.jobs.cancel(params.id, c.get('caller').name)),
  );

  return app;
}

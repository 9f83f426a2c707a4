// `GET /v1/jobs/:id/events` as an async iterable: a parser of server-sent events over a pinned
// HTTPS connection, which resumes after a dropped connection from the last event it delivered.

import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { LoomError } from '../errors/index.ts';
import { errorFromResponse } from './errors.ts';
import type { JobStreamMessage } from './types.ts';

/** One server-sent event as read off the wire. */
export interface ServerSentEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Splits a text stream into server-sent events (the WHATWG format: `event:`, `data:` (joined by
 * newlines), `id:`, a blank line ends an event, lines starting with `:` are comments).
 */
export async function* parseServerSentEvents(
  chunks: AsyncIterable<Buffer | string>,
): AsyncGenerator<ServerSentEvent> {
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  for await (const chunk of chunks) {
    buffer += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let newline = buffer.search(/\r?\n|\r/);
    // A CR at the end of what has arrived may be the first half of a CRLF: wait for the next chunk.
    while (newline >= 0 && !(newline === buffer.length - 1 && buffer.endsWith('\r'))) {
      const line = buffer.slice(0, newline);
      const skip = buffer.startsWith('\r\n', newline) ? 2 : 1;
      buffer = buffer.slice(newline + skip);
      if (line === '') {
        if (data.length > 0 || event !== '') {
          yield { event: event || 'message', data: data.join('\n'), ...(id !== undefined ? { id } : {}) };
        }
        event = '';
        data = [];
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      }
      newline = buffer.search(/\r?\n|\r/);
    }
  }
}

/** Options of a job event stream. */
export interface JobEventStreamOptions {
  /** Only events after this seq (the stream still starts with a snapshot). Default 0. */
  after?: number;
  /** Reconnections after a dropped connection before giving up. Default 5. */
  retries?: number;
  /** Ends the stream (and its connection) when aborted. */
  signal?: AbortSignal;
}

/** Defaults of `JobEventStreamOptions`. */
export const JOB_EVENT_STREAM_DEFAULTS = { after: 0, retries: 5, retryDelayMs: 500 } as const;

interface StreamTarget {
  url: string;
  headers: Record<string, string>;
  ca: string;
}

function open(target: StreamTarget, lastId: number, signal?: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(
      target.url,
      {
        method: 'GET',
        headers: {
          ...target.headers,
          accept: 'text/event-stream',
          ...(lastId > 0 ? { 'last-event-id': String(lastId) } : {}),
        },
        ca: target.ca,
        agent: false,
        ...(signal ? { signal } : {}),
      },
      resolve,
    );
    req.on('error', (err) =>
      reject(
        signal?.aborted
          ? new LoomError('LOOM_ERR_NETWORK', 'the event stream was stopped', { cause: err })
          : new LoomError('LOOM_ERR_NETWORK', `${target.url}: ${err.message}`, { cause: err }),
      ),
    );
    req.end();
  });
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The job's events until it finishes: a `snapshot` first (again after each reconnection), then
 * each event once. An error answer (unknown job, bad token) throws its LoomError at once; a
 * connection that drops is opened again from the last seq, `retries` times in a row at most.
 */
export async function* jobEventStream(
  target: StreamTarget,
  options: JobEventStreamOptions = {},
): AsyncGenerator<JobStreamMessage> {
  let lastId = options.after ?? JOB_EVENT_STREAM_DEFAULTS.after;
  const retries = options.retries ?? JOB_EVENT_STREAM_DEFAULTS.retries;
  let failures = 0;
  for (;;) {
    let res: IncomingMessage;
    try {
      res = await open(target, lastId, options.signal);
    } catch (err) {
      if (options.signal?.aborted || ++failures > retries) throw err;
      await new Promise((r) => setTimeout(r, JOB_EVENT_STREAM_DEFAULTS.retryDelayMs * failures));
      continue;
    }
    if (res.statusCode !== 200) {
      throw errorFromResponse(target.url, res.statusCode ?? 0, await readAll(res));
    }
    let broken: unknown;
    try {
      for await (const sse of parseServerSentEvents(res)) {
        failures = 0;
        let data: unknown;
        try {
          data = JSON.parse(sse.data);
        } catch (err) {
          throw new LoomError(
            'LOOM_ERR_PROTOCOL',
            `the event stream sent an event that is not JSON (${sse.event})`,
            {
              cause: err,
            },
          );
        }
        const seq = sse.id !== undefined ? Number(sse.id) : undefined;
        if (seq !== undefined && Number.isSafeInteger(seq)) lastId = seq;
        yield (
          sse.event === 'snapshot'
            ? { event: 'snapshot', data }
            : { event: sse.event, ...(seq !== undefined ? { id: seq } : {}), data }
        ) as JobStreamMessage;
        if (sse.event === 'job-finished') return;
      }
    } catch (err) {
      if (err instanceof LoomError && err.code === 'LOOM_ERR_PROTOCOL') throw err;
      broken = err;
    } finally {
      res.destroy();
    }
    if (options.signal?.aborted) return;
    // The connection ended before the job finished: open it again from the last event.
    if (++failures > retries) {
      throw new LoomError('LOOM_ERR_NETWORK', `the event stream of ${target.url} keeps breaking off`, {
        ...(broken === undefined ? {} : { cause: broken }),
      });
    }
    await new Promise((r) => setTimeout(r, JOB_EVENT_STREAM_DEFAULTS.retryDelayMs * failures));
  }
}

// Sends request bodies the ways real clients do: with a Content-Length, chunked in several
// writes (node:http without a length, as streaming clients send), endlessly, or through curl.
import { spawn, spawnSync } from 'node:child_process';
import {
  type Agent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';

export interface BodyReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The connection the request went out on (compare two replies to see one reused). */
  socket: Socket | null;
}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  /** 'length' sends a Content-Length; 'chunked' sends `pieces` separate writes without one. */
  framing: 'length' | 'chunked';
  /** Writes of a chunked body (default 4). */
  pieces?: number;
  agent?: Agent;
  /** CA to trust for https:// URLs. */
  ca?: string;
}

function requestFor(url: URL) {
  return url.protocol === 'https:' ? httpsRequest : httpRequest;
}

function collect(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      text += d;
    });
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}

/** Sends `body` framed as asked and resolves with the whole reply. */
export function sendBody(url: string, body: Buffer | string, opts: SendOptions): Promise<BodyReply> {
  const target = new URL(url);
  const bytes = Buffer.from(body);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  if (opts.framing === 'length') headers['content-length'] = String(bytes.length);
  else headers['transfer-encoding'] = 'chunked';
  return new Promise((resolve, reject) => {
    const req = requestFor(target)(
      target,
      {
        method: opts.method ?? 'POST',
        headers,
        ...(opts.agent ? { agent: opts.agent } : {}),
        ...(opts.ca ? { ca: opts.ca } : {}),
      },
      (res) => {
        collect(res).then(
          (text) =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text,
              socket: req.socket,
            }),
          reject,
        );
      },
    );
    req.on('error', reject);
    if (opts.framing === 'length') {
      req.end(bytes);
      return;
    }
    const pieces = Math.max(1, opts.pieces ?? 4);
    const size = Math.ceil(bytes.length / pieces);
    let offset = 0;
    // Each write is its own chunk on the wire; a turn of the event loop between them keeps
    // them apart in time too, as a client streaming its body sends them. Backpressure is not
    // waited for: once a reply has come, Node's client no longer tells a request its socket
    // drained, and the bodies here are small enough to queue.
    const writeNext = (): void => {
      if (offset >= bytes.length) {
        req.end();
        return;
      }
      const piece = bytes.subarray(offset, offset + size);
      offset += piece.length;
      req.write(piece);
      setImmediate(writeNext);
    };
    writeNext();
  });
}

export interface EndlessReply {
  status: number;
  text: string;
  /** Resolves when the connection carrying the endless body has closed. */
  closed: Promise<void>;
  /** Whether the client was still sending when the reply came. */
  stillSending: boolean;
}

/**
 * Sends a chunked body that never ends (64 KiB writes of spaces after `prefix`) and resolves with
 * the reply that comes while it is still being sent.
 */
export function sendEndless(
  url: string,
  opts: { prefix?: string; headers?: Record<string, string>; ca?: string } = {},
): Promise<EndlessReply> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    let sending = true;
    let socketClosed: Promise<void> | undefined;
    const req = requestFor(target)(
      target,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...opts.headers },
        agent: false,
        ...(opts.ca ? { ca: opts.ca } : {}),
      },
      (res) => {
        const stillSending = sending;
        collect(res).then(
          (text) =>
            resolve({
              status: res.statusCode ?? 0,
              text,
              closed: socketClosed ?? Promise.resolve(),
              stillSending,
            }),
          reject,
        );
      },
    );
    req.on('socket', (socket) => {
      socketClosed = new Promise<void>((done) => socket.once('close', () => done()));
    });
    // Write errors after the reply (the server closing the connection) are the expected end.
    req.on('error', () => {
      sending = false;
    });
    const filler = Buffer.alloc(64 * 1024, 0x20);
    const pump = (): void => {
      if (!sending || req.destroyed) return;
      if (req.write(filler)) setImmediate(pump);
      else req.once('drain', pump);
    };
    req.write(opts.prefix ?? '{"pad": "');
    pump();
  });
}

/** Whether a `curl` binary is on the PATH. */
export const HAVE_CURL = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * POSTs `body` with curl, streamed from its stdin with `Transfer-Encoding: chunked` (or with a
 * Content-Length when `framing` is 'length'); resolves with the status and body.
 */
export function curlPost(
  url: string,
  body: Buffer | string,
  opts: { framing: 'length' | 'chunked'; headers?: Record<string, string>; caFile?: string },
): Promise<{ status: number; text: string }> {
  const args = ['-sS', '-X', 'POST', '-H', 'content-type: application/json', '-w', '\n%{http_code}'];
  if (opts.framing === 'chunked') args.push('-H', 'Transfer-Encoding: chunked');
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (opts.caFile) args.push('--cacert', opts.caFile);
  args.push('--data-binary', '@-', url);
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`curl exited with ${code}: ${err}`));
        return;
      }
      const cut = out.lastIndexOf('\n');
      resolve({ status: Number(out.slice(cut + 1)), text: out.slice(0, cut) });
    });
    child.stdin.end(Buffer.from(body));
  });
}

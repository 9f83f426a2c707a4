// Serves the inference app inside the site network with @hono/node-server: plain HTTP, or
// HTTPS with a certificate of the site's choosing that can be replaced while it runs.
import { type Stats, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { getRequestListener } from '@hono/node-server';
import { LoomError } from '../../shared/errors/index.ts';
import { createLogger, type Logger } from '../../shared/log/index.ts';
import { createInferenceApp, type InferenceAppOptions } from './app.ts';
import type { ModelServer } from './model-server.ts';
import { createNodeRoutes } from './node-routes.ts';

/** The certificate and key files of an HTTPS inference server. */
export interface InferenceTlsFiles {
  /** PEM certificate, its chain after it if any. */
  certPath: string;
  /** PEM private key of the certificate. */
  keyPath: string;
  /** How often the two files are checked for a replacement, in ms. Default 5000. */
  pollMs?: number;
}

/** Options of `startInferenceServer`. */
export interface InferenceServerOptions extends InferenceAppOptions {
  /** Interface to listen on. Default `'127.0.0.1'`. */
  host?: string;
  /** Port to listen on. Default 8501; 0 picks a free port. */
  port?: number;
  /** Serve HTTPS with these files. Default: plain HTTP. */
  tls?: InferenceTlsFiles;
}

const TLS_POLL_MS = 5000;

/** Reads and checks a certificate and key pair; LOOM_ERR_INVALID_CONFIG when they cannot be used. */
export async function readTlsPair(files: InferenceTlsFiles): Promise<{ cert: string; key: string }> {
  const read = async (path: string, what: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      throw new LoomError(
        'LOOM_ERR_INVALID_CONFIG',
        `cannot read the inference TLS ${what} ${path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  };
  const [cert, key] = await Promise.all([read(files.certPath, 'certificate'), read(files.keyPath, 'key')]);
  // An empty key would be taken for no key at all, and every handshake would then fail (a file
  // caught between truncation and write while it is being replaced reads empty).
  for (const [text, what, path] of [
    [cert, 'certificate', files.certPath],
    [key, 'key', files.keyPath],
  ] as const) {
    if (!text.includes('-----BEGIN')) {
      throw new LoomError('LOOM_ERR_INVALID_CONFIG', `the inference TLS ${what} ${path} holds no PEM block`);
    }
  }
  try {
    // The same check the server does, now, so a bad pair is a clear error at start.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new LoomError(
      'LOOM_ERR_INVALID_CONFIG',
      `the inference TLS certificate ${files.certPath} and key ${files.keyPath} cannot be used together: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return { cert, key };
}

/**
 * Puts a replaced certificate or key in service without a restart (certificates are rotated);
 * a pair that does not fit (one file written, not yet the other) keeps the one in use.
 */
function watchTlsPair(server: HttpsServer, files: InferenceTlsFiles, log?: Logger): () => void {
  const onChange = (current: Stats, previous: Stats): void => {
    if (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino) return;
    readTlsPair(files).then(
      (pair) => {
        server.setSecureContext({ ...pair, minVersion: 'TLSv1.2' });
        log?.info('inference TLS certificate reloaded', { cert: files.certPath });
      },
      (err: unknown) =>
        log?.warn('cannot use the changed inference TLS files; keeping the certificate in use', {
          error: err instanceof Error ? err.message : String(err),
        }),
    );
  };
  const interval = files.pollMs ?? TLS_POLL_MS;
  for (const path of [files.certPath, files.keyPath]) {
    watchFile(path, { interval, persistent: false }, onChange);
  }
  return () => {
    for (const path of [files.certPath, files.keyPath]) unwatchFile(path, onChange);
  };
}

/** A listening inference server. */
export interface RunningInferenceServer {
  port: number;
  url: string;
  /** Stops accepting connections and resolves once open requests have finished. */
  close(): Promise<void>;
}

/**
 * Starts the OIP v2 inference API for `server`, over HTTPS when `opts.tls` names a certificate
 * and key (read at start, and again when either file changes). Throws LOOM_ERR_INVALID_CONFIG
 * when the port cannot be used (taken, or not allowed) or the TLS files cannot.
 * @param opts.host default '127.0.0.1'
 * @param opts.port default 8501
 * @param opts.tls default none (plain HTTP)
 */
export async function startInferenceServer(
  server: ModelServer,
  opts: InferenceServerOptions = {},
): Promise<RunningInferenceServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8501;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) {
    throw new LoomError('LOOM_ERR_INVALID_CONFIG', `inference port ${port} is not a valid port`);
  }
  const pair = opts.tls ? await readTlsPair(opts.tls) : undefined;
  const log = opts.log ?? createLogger({ component: 'inference' });
  const app = createInferenceApp(server, { ...opts, log });
  // The hot routes are answered from Node's own request and response; the rest goes through
  // Hono. overrideGlobalObjects off: the agent shares the process and must keep the standard
  // fetch classes.
  const fast = createNodeRoutes(server, opts, log);
  const slow = getRequestListener(app.fetch, { hostname: host, overrideGlobalObjects: false });
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    if (!fast(req, res)) void slow(req, res);
  };
  const http: Server = pair
    ? (createHttpsServer({ ...pair, minVersion: 'TLSv1.2' }, listener) as unknown as Server)
    : createHttpServer(listener);
  http.listen(port, host);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      http.off('listening', onListening);
      reject(
        new LoomError(
          'LOOM_ERR_INVALID_CONFIG',
          `inference server cannot listen on ${host}:${port}: ${err.code ?? err.message}`,
          {
            cause: err,
          },
        ),
      );
    };
    const onListening = (): void => {
      http.off('error', onError);
      resolve();
    };
    http.once('error', onError);
    http.once('listening', onListening);
  });
  const actual = (http.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const unwatch = opts.tls ? watchTlsPair(http as unknown as HttpsServer, opts.tls, opts.log) : () => {};
  return {
    port: actual,
    url: `${pair ? 'https' : 'http'}://${urlHost}:${actual}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        unwatch();
        // A second close() finds the server stopped; that is success, not an error.
        http.close((err) =>
          err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING' ? reject(err) : resolve(),
        );
        // Idle keep-alive connections would otherwise hold close() open until they time out.
        http.closeIdleConnections();
      }),
  };
}

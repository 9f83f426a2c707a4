// Serves the inference app over plain HTTP inside the site network with @hono/node-server.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { LoomError } from '../../shared/errors/index.ts';
import { createInferenceApp, type InferenceAppOptions } from './app.ts';
import type { ModelServer } from './model-server.ts';

/** Options of `startInferenceServer`. */
export interface InferenceServerOptions extends InferenceAppOptions {
  /** Interface to listen on. Default `'127.0.0.1'`. */
  host?: string;
  /** Port to listen on. Default 8501; 0 picks a free port. */
  port?: number;
}

/** A listening inference server. */
export interface RunningInferenceServer {
  port: number;
  url: string;
  /** Stops accepting connections and resolves once open requests have finished. */
  close(): Promise<void>;
}

/**
 * Starts the OIP v2 inference API for `server`. Throws LOOM_ERR_INVALID_CONFIG when the port
 * cannot be used (taken, or not allowed).
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
  const app = createInferenceApp(server, opts);
  // overrideGlobalObjects off: the agent shares the process and must keep the standard fetch classes.
  const http = serve({ fetch: app.fetch, hostname: host, port, overrideGlobalObjects: false }) as Server;
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
  return {
    port: actual,
    url: `http://${urlHost}:${actual}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // A second close() finds the server stopped; that is success, not an error.
        http.close((err) =>
          err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING' ? reject(err) : resolve(),
        );
        // Idle keep-alive connections would otherwise hold close() open until they time out.
        http.closeIdleConnections();
      }),
  };
}

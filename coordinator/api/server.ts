// Serves the operator API over HTTPS with the coordinator's server certificate.
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { ApiEnv } from './context.ts';

export interface ApiServer {
  port: number;
  close(): Promise<void>;
}

export function startApiServer(
  app: Hono<ApiEnv>,
  opts: { host: string; port: number; certPem: string; keyPem: string },
): Promise<ApiServer> {
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch: app.fetch,
        hostname: opts.host,
        port: opts.port,
        createServer,
        serverOptions: { cert: opts.certPem, key: opts.keyPem, minVersion: 'TLSv1.2' },
      },
      (info: AddressInfo) => {
        resolve({
          port: info.port,
          close: () =>
            new Promise<void>((done) => {
              (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
              server.close(() => done());
            }),
        });
      },
    );
    server.once('error', reject);
  });
}

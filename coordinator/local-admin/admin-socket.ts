// The coordinator's local admin socket: a Unix socket in its data dir (mode 0600, in a 0700
// folder), so whoever may read the data dir may also ask the running coordinator for what only
// it can do safely, such as a consistent backup while its database is locked. Nothing else reaches it.

import { chmod, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { LoomError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/log/index.ts';
import { type AuditReport, auditReport, createLevelAuditLog } from '../audit/index.ts';
import { writeBackup } from '../backup/index.ts';
import type { CoordinatorDb } from '../store/index.ts';

/** Longest Unix socket path Linux accepts (sun_path is 108 bytes with its terminator). */
const MAX_SOCKET_PATH = 107;

/** Where the running coordinator of `dataDir` listens. */
export function adminSocketPath(dataDir: string): string {
  return join(dataDir, 'coordinator.sock');
}

export interface AdminSocket {
  readonly path: string;
  close(): Promise<void>;
}

/** Starts the admin socket; resolves undefined (with a warning) where the path is too long for a socket. */
export async function startAdminSocket(opts: {
  dataDir: string;
  db: CoordinatorDb;
  log: Logger;
}): Promise<AdminSocket | undefined> {
  const path = adminSocketPath(opts.dataDir);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    opts.log.warn('data dir path too long for the local admin socket; backups need the coordinator stopped', {
      path,
    });
    return undefined;
  }
  // A socket file left by a coordinator that was killed; the database lock says none runs now.
  await rm(path, { force: true });
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/backup') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      writeBackup(opts.db, opts.dataDir, res).then(
        (summary) => opts.log.info('backup written', { records: summary.records, sha256: summary.sha256 }),
        (err: unknown) => {
          opts.log.error('backup failed', { error: err instanceof Error ? err.message : String(err) });
          res.destroy(err instanceof Error ? err : new Error(String(err)));
        },
      );
      return;
    }
    if (req.method === 'GET' && req.url === '/audit/verify') {
      auditReport(createLevelAuditLog(opts.db)).then(
        (report) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(report)),
        (err: unknown) => {
          opts.log.error('audit check failed', { error: err instanceof Error ? err.message : String(err) });
          res
            .writeHead(500, { 'content-type': 'text/plain' })
            .end('the audit check failed; see the coordinator log\n');
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('unknown request\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Asks the coordinator running on `dataDir` for a backup and streams it into `out`. LOOM_ERR_NETWORK
 * when nothing answers on the socket.
 */
export function backupFromRunningCoordinator(dataDir: string, out: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = request({ socketPath: adminSocketPath(dataDir), path: '/backup', method: 'GET' }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(
          new LoomError(
            'LOOM_ERR_NETWORK',
            `the running coordinator answered ${res.statusCode} to the backup request`,
          ),
        );
        return;
      }
      res.once('error', reject);
      res.pipe(out);
      out.once('finish', () => resolve());
      out.once('error', reject);
      res.once('aborted', () => reject(new LoomError('LOOM_ERR_NETWORK', 'the backup stream broke off')));
    });
    req.once('error', (err) =>
      reject(
        new LoomError(
          'LOOM_ERR_NETWORK',
          `the database in ${dataDir} is locked but no coordinator answers on ${adminSocketPath(dataDir)}: ${err.message}`,
          { cause: err },
        ),
      ),
    );
    req.end();
  });
}

/**
 * Asks the coordinator running on `dataDir` to check its audit chain (its database is locked to
 * everyone else). LOOM_ERR_NETWORK when nothing answers on the socket.
 */
export function auditReportFromRunningCoordinator(dataDir: string): Promise<AuditReport> {
  return new Promise<AuditReport>((resolve, reject) => {
    const req = request(
      { socketPath: adminSocketPath(dataDir), path: '/audit/verify', method: 'GET' },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', reject);
        res.once('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) {
            reject(
              new LoomError(
                'LOOM_ERR_NETWORK',
                `the running coordinator answered ${res.statusCode} to the audit check: ${text.trim()}`,
              ),
            );
            return;
          }
          try {
            resolve(JSON.parse(text) as AuditReport);
          } catch (err) {
            reject(
              new LoomError('LOOM_ERR_NETWORK', 'the running coordinator sent an unreadable audit check', {
                cause: err,
              }),
            );
          }
        });
      },
    );
    req.once('error', (err) =>
      reject(
        new LoomError(
          'LOOM_ERR_STORE_LOCKED',
          `the database in ${dataDir} is locked (is a coordinator running on this data dir?) and no coordinator answers on ` +
            `${adminSocketPath(dataDir)}: stop it, or run "loom audit verify" against its API`,
          { cause: err },
        ),
      ),
    );
    req.end();
  });
}

// What every inference route decides the same way, whatever serves it (the Hono app or the
// Node fast path): version segments, the loaded model a call names, retirement headers, and
// whether a revoked agent may still answer.
import { createRequire } from 'node:module';
import { LoomError } from '../../shared/errors/index.ts';
import type { ModelServer } from './model-server.ts';
import type { RetirementBook } from './retirements.ts';
import type { ServedModel } from './types.ts';

/** The agent's revocation as the inference API reports it. */
export interface ServingRevocation {
  /** When the agent learnt of it (ISO 8601). */
  revokedAt: string;
}

/** Response header present on every answer of a revoked agent. */
export const AGENT_STATUS_HEADER = 'Loom-Agent-Status';

export const LOOM_VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string })
  .version;

/** The path of a model version on this API, as a `Link` names the successor. */
export function versionPath(name: string, version: number): string {
  return `/v2/models/${encodeURIComponent(name)}/versions/${version}`;
}

/** A version path segment; anything but a plain integer names no version. */
export function parseVersion(name: string, text: string): number {
  const v = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(v))
    throw new LoomError('LOOM_ERR_NOT_FOUND', `model "${name}" has no version "${text}"`);
  return v;
}

/** The loaded model `name`@`version`, without loading anything; errors as a prediction gives. */
export function findLoaded(server: ModelServer, name: string, version?: number): ServedModel {
  const served = server.get(name, version);
  if (served) return served;
  if (server.list().length === 0) throw new LoomError('LOOM_ERR_MODEL_UNAVAILABLE', 'no model is loaded yet');
  if (!server.get(name)) throw new LoomError('LOOM_ERR_NOT_FOUND', `model "${name}" is not loaded`);
  throw new LoomError('LOOM_ERR_NOT_FOUND', `model "${name}" version ${version} is not loaded`);
}

/** The loaded versions of `name`, ascending. */
export function loadedVersions(server: ModelServer, name: string): number[] {
  return server
    .list()
    .filter((m) => m.name === name)
    .map((m) => m.version)
    .sort((a, b) => a - b);
}

/**
 * Refuses a retired version past its sunset (410, naming the successor), and marks one still in
 * its grace period with the RFC 9745 / RFC 8594 headers and a link to the successor, through
 * `setHeader`. Headers are set before the refusal, so the 410 carries the `Link` too.
 */
export function applyRetirement(
  setHeader: (name: string, value: string) => void,
  book: RetirementBook | undefined,
  name: string,
  version: number,
): void {
  const r = book?.get(name, version);
  if (!r) return;
  setHeader('Link', `<${versionPath(name, r.successor)}>; rel="successor-version"`);
  if (Date.now() >= Date.parse(r.sunsetAt)) {
    throw new LoomError(
      'LOOM_ERR_VERSION_RETIRED',
      `model "${name}" version ${version} was retired on ${r.sunsetAt}; use version ${r.successor} (${versionPath(name, r.successor)})`,
      { details: { successor: r.successor } },
    );
  }
  setHeader('Deprecation', `@${Math.floor(Date.parse(r.deprecatedAt) / 1000)}`);
  setHeader('Sunset', new Date(r.sunsetAt).toUTCString());
}

/** Throws LOOM_ERR_CERT_REVOKED (503) when a revoked agent must not serve. */
export function assertServing(revoked: boolean, serveWhenRevoked: boolean): void {
  if (revoked && !serveWhenRevoked) {
    throw new LoomError(
      'LOOM_ERR_CERT_REVOKED',
      'this agent has been revoked by its coordinator and no longer serves predictions',
    );
  }
}

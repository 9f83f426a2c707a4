// Turns a server's failure to listen (port taken, not allowed, address not on this host) into
// one Loom error that says which server, which address, and what to change.
import { causeWithCode, isLoomError, LoomError } from '../errors/index.ts';

/** What failed to listen, and how the operator changes it. */
export interface ListenTarget {
  /** What a person calls the server, e.g. `the operator API`. */
  service: string;
  host: string;
  port: number;
  /** How to choose another port, e.g. `--api-port (or LOOM_API_PORT)`. */
  portOption: string;
  /** How to choose another address, e.g. `--bind`. Default: not mentioned. */
  hostOption?: string;
  /** Who else might hold the port, e.g. `another coordinator`. Default `another process`. */
  likelyHolder?: string;
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The LoomError for `err`, a failure of `listen()` on `target`: LOOM_ERR_ADDRESS_IN_USE for a
 * taken port, LOOM_ERR_INVALID_CONFIG for a port that needs privileges or an address this host
 * does not have, and LOOM_ERR_INVALID_CONFIG with the system's code otherwise. The original
 * error is the cause.
 */
export function listenError(err: unknown, target: ListenTarget): LoomError {
  const where = hostPort(target.host, target.port);
  const inUse = causeWithCode(err, 'EADDRINUSE');
  if (inUse) {
    return new LoomError(
      'LOOM_ERR_ADDRESS_IN_USE',
      `${target.service} cannot listen on ${where}: the port is already in use ` +
        `(is ${target.likelyHolder ?? 'another process'} running?); stop it, or choose another port with ${target.portOption}`,
      { cause: err, details: { host: target.host, port: target.port } },
    );
  }
  if (causeWithCode(err, 'EACCES')) {
    return new LoomError(
      'LOOM_ERR_INVALID_CONFIG',
      `${target.service} is not allowed to listen on ${where} (ports below 1024 need privileges); ` +
        `choose port 1024 or above with ${target.portOption}`,
      { cause: err },
    );
  }
  if (causeWithCode(err, 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN')) {
    return new LoomError(
      'LOOM_ERR_INVALID_CONFIG',
      `${target.service} cannot listen on ${where}: ${target.host} is not an address of this host` +
        (target.hostOption ? `; give ${target.hostOption} one of its addresses, or 0.0.0.0 for all` : ''),
      { cause: err },
    );
  }
  if (isLoomError(err)) return err;
  return new LoomError(
    'LOOM_ERR_INVALID_CONFIG',
    `${target.service} cannot listen on ${where}: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}

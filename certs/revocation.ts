// In-memory revocation list of agent ids and certificate serials; persisting it is the caller's job.
import { LoomError } from '../shared/errors/index.ts';

export interface RevocationListJSON {
  /** Agent id to the ISO time it was revoked. */
  agents: Record<string, string>;
  /** Normalised (lowercase hex) certificate serials. */
  serials: string[];
}

/** Revoked agents and certificate serials; a certificate is revoked if either its CN or serial is listed. */
export class RevocationList {
  private readonly agents = new Map<string, Date>();
  private readonly serials = new Set<string>();

  /**
   * Revokes every certificate whose subject CN is `agentId`, including ones issued later.
   * @param at when it was revoked, kept for the record; default now
   */
  revokeAgent(agentId: string, at: Date = new Date()): void {
    if (typeof agentId !== 'string' || agentId.length === 0)
      throw new TypeError('agentId must be a non-empty string');
    if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new TypeError('at must be a valid Date');
    this.agents.set(agentId, new Date(at.getTime()));
  }

  /** Revokes one certificate by serial (hex, any case, colons allowed). */
  revokeSerial(serial: string): void {
    const normalized = normalizeSerial(serial);
    if (normalized === undefined) throw new TypeError('serial must be a hex string');
    this.serials.add(normalized);
  }

  /** True when the certificate's agent or its serial has been revoked. */
  isRevoked(cert: { subjectCN: string; serial: string }): boolean {
    if (this.agents.has(cert.subjectCN)) return true;
    const serial = normalizeSerial(cert.serial);
    return serial !== undefined && this.serials.has(serial);
  }

  /** When `agentId` was revoked, or undefined if it is not. */
  agentRevokedAt(agentId: string): Date | undefined {
    const at = this.agents.get(agentId);
    return at ? new Date(at.getTime()) : undefined;
  }

  toJSON(): RevocationListJSON {
    // fromEntries defines own properties, so an agent id like '__proto__' cannot touch the prototype.
    const agents = Object.fromEntries([...this.agents].map(([id, at]) => [id, at.toISOString()]));
    return { agents, serials: [...this.serials].sort() };
  }

  /** Rebuilds a list from `toJSON` output; throws LOOM_ERR_PKI when the shape or any value is invalid. */
  static fromJSON(json: unknown): RevocationList {
    if (!isPlainObject(json)) throw bad('expected an object with "agents" and "serials"');
    const { agents, serials } = json;
    if (!isPlainObject(agents)) throw bad('"agents" must be an object of agent id to ISO time');
    if (!Array.isArray(serials)) throw bad('"serials" must be an array');
    const list = new RevocationList();
    for (const [agentId, at] of Object.entries(agents)) {
      const date = typeof at === 'string' ? new Date(at) : undefined;
      if (agentId.length === 0 || !date || Number.isNaN(date.getTime())) {
        throw bad(`agent entry ${JSON.stringify(agentId)} must map a non-empty id to an ISO time`);
      }
      list.agents.set(agentId, date);
    }
    for (const serial of serials) {
      const normalized = typeof serial === 'string' ? normalizeSerial(serial) : undefined;
      if (normalized === undefined) throw bad(`serial ${JSON.stringify(serial)} is not a hex string`);
      list.serials.add(normalized);
    }
    return list;
  }
}

/**
 * Lowercase hex without colons or leading zero bytes, so OpenSSL-style (`0A:1B`), Node (`0A1B`) and
 * forge (`0a1b`) spellings of one serial compare equal. Undefined when it is not hex.
 */
export function normalizeSerial(serial: unknown): string | undefined {
  if (typeof serial !== 'string') return undefined;
  let hex = serial.replaceAll(':', '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) return undefined;
  if (hex.length % 2 === 1) hex = `0${hex}`;
  while (hex.length > 2 && hex.startsWith('00')) hex = hex.slice(2);
  return hex;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(reason: string): LoomError {
  return new LoomError('LOOM_ERR_PKI', `Invalid revocation list: ${reason}`);
}

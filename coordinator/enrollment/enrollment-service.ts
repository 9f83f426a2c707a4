// Enrollment: one-time expiring tokens for operators to hand to sites, and the exchange of such
// a token plus a CSR for a short-lived client certificate naming a coordinator-chosen agent id.
import { randomBytes } from 'node:crypto';
import {
  createEnrollmentToken,
  type KeyCertPair,
  parseEnrollmentToken,
  secretMatches,
  signCsr,
} from '../../certs/index.ts';
import { LoomError } from '../../shared/errors/index.ts';
import {
  type AgentDirectory,
  type AgentRecord,
  assertEnrollmentTokenUsable,
  type TokenStore,
} from '../directory/index.ts';

export interface EnrollmentServiceOptions {
  ca: KeyCertPair;
  caFingerprint: string;
  tokens: TokenStore;
  agents: AgentDirectory;
  /** Client certificate lifetime. */
  certValiditySec: number;
  /** Default enrollment token lifetime. */
  tokenTtlSec: number;
}

export interface EnrollResult {
  agent: AgentRecord;
  certificate: string;
  caCertificate: string;
}

export class EnrollmentService {
  constructor(private readonly opts: EnrollmentServiceOptions) {}

  /** A new one-time token, audited as made by `createdBy`; only the hash of its secret is stored. */
  async createToken(
    createdBy: string,
    ttlSec?: number,
  ): Promise<{ token: string; id: string; expiresAt: string }> {
    const t = createEnrollmentToken({
      caFingerprint: this.opts.caFingerprint,
      ttlSeconds: ttlSec ?? this.opts.tokenTtlSec,
    });
    await this.opts.tokens.addEnrollmentToken(
      {
        id: t.id,
        secretHash: t.secretHash,
        expiresAt: t.expiresAt.toISOString(),
        createdAt: new Date().toISOString(),
        createdBy,
      },
      { audit: { actor: createdBy, action: 'enrollment-token.create', target: t.id } },
    );
    return { token: t.token, id: t.id, expiresAt: t.expiresAt.toISOString() };
  }

  /**
   * Renewal over the mTLS channel: a CSR from an agent that is connected with a valid certificate
   * gets a new certificate for the same agent id. It stays pending until the agent first connects
   * with it, so an agent that never receives the reply can still use its current certificate.
   */
  async renew(agentId: string, csrPem: string): Promise<{ certificate: string; notAfter: Date }> {
    const agent = await this.opts.agents.get(agentId);
    if (agent.revoked) throw new LoomError('LOOM_ERR_CERT_REVOKED', `agent ${agentId} is revoked`);
    const signed = signCsr(this.opts.ca, csrPem, {
      subjectCN: agentId,
      validitySeconds: this.opts.certValiditySec,
    });
    await this.opts.agents.setPendingCertificate(
      agentId,
      signed.serial.toLowerCase(),
      signed.notAfter.toISOString(),
    );
    return { certificate: signed.certPem, notAfter: signed.notAfter };
  }

  /**
   * Token + CSR → certificate. The token is checked first (secret, then used, then expiry, with the
   * same refusals as the store's consume), so an anonymous caller cannot make the coordinator verify
   * and sign CSRs without a live token. Only then is the CSR checked and signed, and only then is the
   * token spent, atomically (the store checks it again), so a bad CSR does not burn the token. The
   * subject the CSR asked for is replaced by the new agent id. `context.labels` (checked by the
   * caller) are stored in the agent record.
   */
  async enroll(
    token: string,
    csrPem: string,
    name: string,
    context: { remote?: string; labels?: Record<string, string> } = {},
  ): Promise<EnrollResult> {
    const parsed = parseEnrollmentToken(token);
    const matches = (hash: string): boolean => secretMatches(parsed.secret, hash);
    assertEnrollmentTokenUsable(parsed.id, await this.opts.tokens.findEnrollmentToken(parsed.id), matches);
    const agentId = `agent-${randomBytes(6).toString('hex')}`;
    const signed = signCsr(this.opts.ca, csrPem, {
      subjectCN: agentId,
      validitySeconds: this.opts.certValiditySec,
    });
    const agent: AgentRecord = {
      id: agentId,
      name,
      enrolledAt: new Date().toISOString(),
      certSerial: signed.serial.toLowerCase(),
      certNotAfter: signed.notAfter.toISOString(),
      revoked: false,
      ...(context.labels && Object.keys(context.labels).length > 0 ? { labels: { ...context.labels } } : {}),
    };
    // The spent token, the new agent and the audit entry are one batch: a crash never leaves a
    // token used up by an agent that does not exist.
    await this.opts.tokens.consumeEnrollmentToken(parsed.id, matches, agentId, new Date(), {
      alongside: await this.opts.agents.addOps(agent),
      audit: {
        actor: `enrollment:${agentId}`,
        action: 'agent.enroll',
        target: agentId,
        // The socket's peer, not X-Forwarded-For: a header any client can forge has no place in the audit log.
        details: { name, remote: context.remote ?? null, labels: context.labels ?? {} },
      },
    });
    return { agent, certificate: signed.certPem, caCertificate: this.opts.ca.certPem };
  }
}

// Unit tests for certs/: CA, CSR signing, chain checks, tokens, revocation, key files and a real mTLS handshake.
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyCertPair } from '../../certs/index.ts';
import {
  assertCaFingerprint,
  certificateFingerprint,
  certificateInfo,
  createApiToken,
  createCA,
  createEnrollmentToken,
  createKeyAndCsr,
  hashSecret,
  issueServerCert,
  normalizeFingerprint,
  parseApiToken,
  parseEnrollmentToken,
  RevocationList,
  secretMatches,
  signCsr,
  verifyCertificateChain,
  writeKeyFile,
} from '../../certs/index.ts';
import { isLoomError } from '../../shared/errors/index.ts';

/** The LoomError code `fn` throws, a description of any other throw, or undefined if it returns. */
function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isLoomError(err) ? err.code : `not a LoomError: ${String(err)}`;
  }
  return undefined;
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

// Key generation dominates runtime, so the CAs and the agent key are made once for the whole file.
let ca: KeyCertPair;
let otherCa: KeyCertPair;
let agent: { keyPem: string; csrPem: string };

beforeAll(() => {
  ca = createCA();
  otherCa = createCA({ commonName: 'Rogue CA' });
  agent = createKeyAndCsr({ commonName: 'agent-requested' });
});

describe('certificate authority', () => {
  it('creates a self-signed CA certificate named Loom CA', () => {
    const info = certificateInfo(ca.certPem);
    expect(info.subjectCN).toBe('Loom CA');
    expect(info.issuerCN).toBe('Loom CA');
    expect(new X509Certificate(ca.certPem).ca).toBe(true);
    expect(info.serial).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(info.notAfter.getTime() - info.notBefore.getTime()).toBe(3650 * 86_400_000);
    verifyCertificateChain(ca.certPem, ca.certPem);
  });

  it('fingerprints a certificate as a stable 64-hex SHA-256 of its DER, as openssl does', () => {
    const fingerprint = certificateFingerprint(ca.certPem);
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(certificateFingerprint(ca.certPem)).toBe(fingerprint);
    expect(fingerprint).toBe(
      new X509Certificate(ca.certPem).fingerprint256.replaceAll(':', '').toLowerCase(),
    );
    expect(certificateInfo(ca.certPem).fingerprint).toBe(fingerprint);
  });

  it('normalizes fingerprints given with colons, a sha256: prefix or upper case', () => {
    const fingerprint = certificateFingerprint(ca.certPem);
    const colons = new X509Certificate(ca.certPem).fingerprint256;
    expect(normalizeFingerprint(colons)).toBe(fingerprint);
    expect(normalizeFingerprint(`sha256:${fingerprint.toUpperCase()}`)).toBe(fingerprint);
    expect(thrownCode(() => normalizeFingerprint('abc123'))).toBe('LOOM_ERR_TOKEN_INVALID');
    expect(thrownCode(() => normalizeFingerprint('z'.repeat(64)))).toBe('LOOM_ERR_TOKEN_INVALID');
  });

  it('issues a server certificate with IP and DNS SANs for serverAuth, signed by the CA', () => {
    const server = issueServerCert(ca, { hosts: ['127.0.0.1', 'localhost', '::1', 'coordinator.local'] });
    const x509 = new X509Certificate(server.certPem);
    expect(x509.subjectAltName).toBe(
      'IP Address:127.0.0.1, DNS:localhost, IP Address:0:0:0:0:0:0:0:1, DNS:coordinator.local',
    );
    expect(x509.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(x509.ca).toBe(false);
    expect(x509.checkPrivateKey(createPrivateKey(server.keyPem))).toBe(true);
    expect(certificateInfo(server.certPem).subjectCN).toBe('127.0.0.1');
    verifyCertificateChain(ca.certPem, server.certPem);
  });

  it('refuses malformed certificate PEM with LOOM_ERR_PKI', () => {
    expect(thrownCode(() => certificateInfo('not a certificate'))).toBe('LOOM_ERR_PKI');
    expect(
      thrownCode(() =>
        certificateFingerprint('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'),
      ),
    ).toBe('LOOM_ERR_PKI');
  });
});

describe('CSR signing', () => {
  it('issues a client certificate whose CN is the assigned agent id, not the requested one', () => {
    const signed = signCsr(ca, agent.csrPem, { subjectCN: 'agent-0042' });
    const info = certificateInfo(signed.certPem);
    expect(info.subjectCN).toBe('agent-0042');
    expect(info.issuerCN).toBe('Loom CA');
    expect(info.serial).toBe(signed.serial);
    expect(signed.serial).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(new X509Certificate(signed.certPem).keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    verifyCertificateChain(ca.certPem, signed.certPem);
  });

  it('sets notAfter to notBefore plus validitySeconds', () => {
    const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
    const signed = signCsr(ca, agent.csrPem, { subjectCN: 'agent-1', notBefore, validitySeconds: 3600 });
    expect(signed.notAfter.getTime()).toBe(notBefore.getTime() + 3_600_000);
    const info = certificateInfo(signed.certPem);
    expect(info.notBefore.getTime()).toBe(notBefore.getTime());
    expect(info.notAfter.getTime()).toBe(signed.notAfter.getTime());
  });

  it('back-dates notBefore by a minute and defaults to thirty days of validity', () => {
    const before = Date.now();
    const info = certificateInfo(signCsr(ca, agent.csrPem, { subjectCN: 'agent-2' }).certPem);
    expect(info.notBefore.getTime()).toBeGreaterThanOrEqual(before - 61_000);
    expect(info.notBefore.getTime()).toBeLessThanOrEqual(Date.now() - 59_000);
    expect(info.notAfter.getTime() - info.notBefore.getTime()).toBe(30 * 86_400_000);
  });

  it('refuses a tampered CSR whose signature no longer verifies with LOOM_ERR_CSR_INVALID', () => {
    const der = derOf(agent.csrPem);
    const at = der.indexOf('agent-requested');
    expect(at).toBeGreaterThan(0);
    der.write('agent-REQUESTED', at, 'latin1');
    const tampered = toPem('CERTIFICATE REQUEST', der);
    expect(thrownCode(() => signCsr(ca, tampered, { subjectCN: 'agent-3' }))).toBe('LOOM_ERR_CSR_INVALID');
  });

  it('refuses garbage and non-CSR PEM with LOOM_ERR_CSR_INVALID', () => {
    const garbage = toPem('CERTIFICATE REQUEST', Buffer.from('definitely not DER'));
    expect(thrownCode(() => signCsr(ca, garbage, { subjectCN: 'agent-4' }))).toBe('LOOM_ERR_CSR_INVALID');
    expect(thrownCode(() => signCsr(ca, 'hello', { subjectCN: 'agent-4' }))).toBe('LOOM_ERR_CSR_INVALID');
    expect(thrownCode(() => signCsr(ca, ca.certPem, { subjectCN: 'agent-4' }))).toBe('LOOM_ERR_CSR_INVALID');
  });

  it('signs certificates and CSRs with the very bytes forge itself would sign them with', () => {
    // PKCS#1 v1.5 is deterministic: OpenSSL's signature over the same DER must equal forge's.
    const forgeSignature = (pem: string, der: forge.asn1.Asn1): string => {
      const md = forge.md.sha256.create();
      md.update(forge.asn1.toDer(der).getBytes());
      return forge.pki.privateKeyFromPem(pem).sign(md);
    };
    const issued = forge.pki.certificateFromPem(signCsr(ca, agent.csrPem, { subjectCN: 'agent-x' }).certPem);
    expect(issued.signatureOid).toBe(forge.pki.oids.sha256WithRSAEncryption);
    expect(issued.signature).toBe(forgeSignature(ca.keyPem, issued.tbsCertificate));
    const csr = forge.pki.certificationRequestFromPem(agent.csrPem);
    expect(csr.verify()).toBe(true);
    expect(csr.signature).toBe(forgeSignature(agent.keyPem, csr.certificationRequestInfo!));
    expect(
      new X509Certificate(forge.pki.certificateToPem(issued)).verify(
        new X509Certificate(ca.certPem).publicKey,
      ),
    ).toBe(true);
  });

  it('treats a missing subjectCN as a programming error', () => {
    expect(() => signCsr(ca, agent.csrPem, { subjectCN: '' })).toThrow(TypeError);
  });
});

describe('chain verification', () => {
  it('rejects a certificate outside its validity window and accepts it inside', () => {
    // Inside the CA's own window, which starts only a minute before the CA was created.
    const notBefore = new Date(Date.now() - 45_000);
    const expired = signCsr(ca, agent.csrPem, { subjectCN: 'agent-old', notBefore, validitySeconds: 10 });
    expect(thrownCode(() => verifyCertificateChain(ca.certPem, expired.certPem))).toBe('LOOM_ERR_PKI');
    verifyCertificateChain(ca.certPem, expired.certPem, new Date(notBefore.getTime() + 5_000));
    expect(thrownCode(() => verifyCertificateChain(ca.certPem, expired.certPem, new Date(0)))).toBe(
      'LOOM_ERR_PKI',
    );
  });

  it('rejects a certificate issued by another CA', () => {
    const foreign = signCsr(otherCa, agent.csrPem, { subjectCN: 'agent-5' });
    expect(thrownCode(() => verifyCertificateChain(ca.certPem, foreign.certPem))).toBe('LOOM_ERR_PKI');
    verifyCertificateChain(otherCa.certPem, foreign.certPem);
  });

  it('rejects a leaf certificate used as the trust anchor', () => {
    const leaf = signCsr(ca, agent.csrPem, { subjectCN: 'agent-6' });
    expect(thrownCode(() => verifyCertificateChain(leaf.certPem, leaf.certPem))).toBe('LOOM_ERR_PKI');
  });
});

describe('enrollment tokens', () => {
  it('round-trips id, secret and CA fingerprint, storing only a hash of the secret', () => {
    const caFingerprint = certificateFingerprint(ca.certPem);
    const created = createEnrollmentToken({ caFingerprint });
    expect(created.token).toMatch(/^loom1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}\.[0-9a-f]{64}$/);
    const parsed = parseEnrollmentToken(created.token);
    expect(parsed.id).toBe(created.id);
    expect(parsed.caFingerprint).toBe(caFingerprint);
    expect(created.secretHash).toBe(hashSecret(parsed.secret));
    expect(created.token).not.toContain(created.secretHash);
    expect(secretMatches(parsed.secret, created.secretHash)).toBe(true);
    expect(secretMatches(`${parsed.secret}x`, created.secretHash)).toBe(false);
    expect(secretMatches(parsed.secret, 'not-a-hash')).toBe(false);
  });

  it('sets expiresAt to now plus ttlSeconds, one hour by default', () => {
    const caFingerprint = certificateFingerprint(ca.certPem);
    const now = new Date('2030-05-01T12:00:00Z');
    expect(createEnrollmentToken({ caFingerprint, now }).expiresAt.toISOString()).toBe(
      '2030-05-01T13:00:00.000Z',
    );
    expect(createEnrollmentToken({ caFingerprint, now, ttlSeconds: 90 }).expiresAt.toISOString()).toBe(
      '2030-05-01T12:01:30.000Z',
    );
    expect(() => createEnrollmentToken({ caFingerprint, ttlSeconds: 0 })).toThrow(TypeError);
    expect(() => createEnrollmentToken({ caFingerprint: 'nope' })).toThrow(TypeError);
  });

  it('refuses malformed tokens with LOOM_ERR_TOKEN_INVALID', () => {
    const { token } = createEnrollmentToken({ caFingerprint: certificateFingerprint(ca.certPem) });
    const [, id, secret, fp] = token.split('.');
    const malformed = [
      '',
      'loom1',
      `loom2.${id}.${secret}.${fp}`,
      `loom1.${id}.${secret}`,
      `loom1.${id}.${secret}.${fp}.extra`,
      `loom1.${id.slice(1)}.${secret}.${fp}`,
      `loom1.${id.toUpperCase()}G.${secret}.${fp}`,
      `loom1.${id}.${secret.slice(1)}.${fp}`,
      `loom1.${id}.${secret.slice(0, -1)}!.${fp}`,
      `loom1.${id}.${secret}.${fp.slice(2)}`,
      `loom1.${id}.${secret}.${'g'.repeat(64)}`,
    ];
    for (const bad of malformed) {
      expect(
        thrownCode(() => parseEnrollmentToken(bad)),
        bad,
      ).toBe('LOOM_ERR_TOKEN_INVALID');
    }
    expect(parseEnrollmentToken(`  ${token}\n`).id).toBe(id);
  });

  it('accepts the pinned CA and refuses another with LOOM_ERR_CA_MISMATCH naming both fingerprints', () => {
    const pinned = parseEnrollmentToken(
      createEnrollmentToken({ caFingerprint: certificateFingerprint(ca.certPem) }).token,
    ).caFingerprint;
    assertCaFingerprint(pinned, ca.certPem);
    let message = '';
    try {
      assertCaFingerprint(pinned, otherCa.certPem);
    } catch (err) {
      expect(isLoomError(err, 'LOOM_ERR_CA_MISMATCH')).toBe(true);
      message = (err as Error).message;
    }
    expect(message).toContain(pinned.slice(0, 16));
    expect(message).toContain(certificateFingerprint(otherCa.certPem).slice(0, 16));
  });
});

describe('API tokens', () => {
  it('round-trips id and secret and hashes the secret', () => {
    const created = createApiToken();
    expect(created.token).toMatch(/^loom_[0-9a-f]{12}_[0-9a-f]{64}$/);
    const parsed = parseApiToken(created.token);
    expect(parsed.id).toBe(created.id);
    expect(created.hash).toBe(hashSecret(parsed.secret));
    expect(secretMatches(parsed.secret, created.hash)).toBe(true);
  });

  it('refuses malformed tokens with LOOM_ERR_UNAUTHORIZED', () => {
    const { token } = createApiToken();
    for (const bad of [
      '',
      'loom_',
      token.replace('loom_', 'loam_'),
      `${token}0`,
      token.toUpperCase(),
      `${token}_x`,
    ]) {
      expect(
        thrownCode(() => parseApiToken(bad)),
        bad,
      ).toBe('LOOM_ERR_UNAUTHORIZED');
    }
  });
});

describe('revocation list', () => {
  it('revokes by agent id or by serial in any hex spelling', () => {
    const list = new RevocationList();
    list.revokeAgent('agent-bad', new Date('2030-01-01T00:00:00Z'));
    list.revokeSerial('0A:1B:2C');
    expect(list.isRevoked({ subjectCN: 'agent-bad', serial: 'ff' })).toBe(true);
    expect(list.isRevoked({ subjectCN: 'agent-good', serial: '0a1b2c' })).toBe(true);
    expect(list.isRevoked({ subjectCN: 'agent-good', serial: '0a1b2d' })).toBe(false);
  });

  it('survives a JSON round trip and rejects malformed JSON with LOOM_ERR_PKI', () => {
    const list = new RevocationList();
    list.revokeAgent('agent-bad', new Date('2030-01-01T00:00:00Z'));
    list.revokeSerial('7fee');
    const json = JSON.parse(JSON.stringify(list));
    expect(json).toEqual({ agents: { 'agent-bad': '2030-01-01T00:00:00.000Z' }, serials: ['7fee'] });
    const copy = RevocationList.fromJSON(json);
    expect(copy.isRevoked({ subjectCN: 'agent-bad', serial: '01' })).toBe(true);
    expect(copy.isRevoked({ subjectCN: 'x', serial: '7FEE' })).toBe(true);
    for (const bad of [
      null,
      [],
      { agents: {} },
      { agents: { a: 'not a date' }, serials: [] },
      { agents: {}, serials: ['xyz'] },
    ]) {
      expect(
        thrownCode(() => RevocationList.fromJSON(bad)),
        JSON.stringify(bad),
      ).toBe('LOOM_ERR_PKI');
    }
  });
});

describe('key files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-pki-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.skipIf(process.platform === 'win32')(
    'writes keys with mode 0600 inside new 0700 directories',
    async () => {
      const path = join(dir, 'nested', 'agent', 'key.pem');
      await writeKeyFile(path, agent.keyPem);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(join(dir, 'nested', 'agent'))).mode & 0o777).toBe(0o700);
      expect(await readFile(path, 'utf8')).toBe(agent.keyPem);
    },
  );

  it.skipIf(process.platform === 'win32')('tightens an existing world-readable file to 0600', async () => {
    const path = join(dir, 'old-key.pem');
    await writeFile(path, 'a much longer previous content that must be truncated away', { mode: 0o644 });
    await writeKeyFile(path, agent.keyPem);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readFile(path, 'utf8')).toBe(agent.keyPem);
  });
});

describe('mutual TLS', () => {
  interface Attempt {
    /** The server completed a handshake with an authorized client. */
    accepted: boolean;
    peerCN?: string;
    /** Why the server refused the client: its authorizationError, else the TLS error code. */
    serverError?: string;
    /** What the client read before the connection closed. */
    clientData: string;
  }

  let server: tls.Server;
  let port: number;

  beforeAll(async () => {
    const serverPair = issueServerCert(ca, { hosts: ['127.0.0.1', 'localhost'] });
    server = tls.createServer({
      key: serverPair.keyPem,
      cert: serverPair.certPem,
      ca: [ca.certPem],
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on('secureConnection', (socket) => socket.end('hello agent\n'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function connect(client: { key?: string; cert?: string }): Promise<Attempt> {
    const serverSide = new Promise<Omit<Attempt, 'clientData'>>((resolve) => {
      const onSecure = (socket: tls.TLSSocket): void => {
        done();
        resolve({
          accepted: socket.authorized,
          peerCN: String(socket.getPeerCertificate().subject?.CN ?? ''),
        });
      };
      // A certificate that fails verification is dropped after the handshake ('socket hang up') with the
      // reason on the socket; a missing certificate fails inside OpenSSL with its own error code.
      const onError = (err: NodeJS.ErrnoException, socket: tls.TLSSocket): void => {
        done();
        const reason = socket.authorizationError;
        resolve({ accepted: false, serverError: reason ? String(reason) : (err.code ?? err.message) });
      };
      const done = (): void => {
        server.off('secureConnection', onSecure);
        server.off('tlsClientError', onError);
      };
      server.on('secureConnection', onSecure);
      server.on('tlsClientError', onError);
    });

    const socket = tls.connect({ host: '127.0.0.1', port, ca: [ca.certPem], ...client });
    // Not events.once: it rejects on the 'error' that a refused client is expected to see.
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let clientData = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      clientData += chunk;
    });
    // With TLS 1.3 the server refuses a client certificate after the client's handshake finished, so the
    // refusal reaches the client as a later error; the server-side outcome is what the tests assert.
    socket.on('error', () => {});
    const outcome = await serverSide;
    await closed;
    return { ...outcome, clientData };
  }

  it('accepts a client certificate signed from a CSR and sees the assigned agent id', async () => {
    const signed = signCsr(ca, agent.csrPem, { subjectCN: 'agent-tls' });
    const attempt = await connect({ key: agent.keyPem, cert: signed.certPem });
    expect(attempt).toEqual({ accepted: true, peerCN: 'agent-tls', clientData: 'hello agent\n' });
  });

  it('refuses a client certificate from another CA', async () => {
    const foreign = signCsr(otherCa, agent.csrPem, { subjectCN: 'agent-tls' });
    const attempt = await connect({ key: agent.keyPem, cert: foreign.certPem });
    expect(attempt.accepted).toBe(false);
    expect(attempt.serverError).toMatch(/^UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)$/);
    expect(attempt.clientData).toBe('');
  });

  it('refuses a client that presents no certificate', async () => {
    const attempt = await connect({});
    expect(attempt.accepted).toBe(false);
    expect(attempt.serverError).toBe('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
    expect(attempt.clientData).toBe('');
  });
});

/**
 * A CSR whose public key is RSA with the given modulus size and exponent, signed with the 2048-bit
 * agent key (so its signature does not verify: a refusal naming the key shows the key was checked
 * before the signature). Made with forge directly, so no slow big-key generation is needed.
 */
function csrWithKey(bits: number, exponent: number): string {
  const modulus = Buffer.alloc(bits / 8, 0xa5);
  modulus[0] |= 0x80;
  modulus[modulus.length - 1] |= 1;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(
    new forge.jsbn.BigInteger(modulus.toString('hex'), 16),
    new forge.jsbn.BigInteger(String(exponent), 10),
  );
  csr.setSubject([{ name: 'commonName', value: 'oversized' }]);
  csr.sign(forge.pki.privateKeyFromPem(agent.keyPem), forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/** The LoomError `fn` throws (fails the test if it throws anything else or nothing). */
function thrown(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (isLoomError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a LoomError');
}

describe('CSR key limits', () => {
  it('refuses an 8192-bit RSA key with LOOM_ERR_CSR_INVALID before checking the signature', () => {
    const refusal = thrown(() => signCsr(ca, csrWithKey(8192, 65537), { subjectCN: 'agent-big' }));
    expect(refusal.code).toBe('LOOM_ERR_CSR_INVALID');
    expect(refusal.message).toMatch(/8192-bit RSA; 2048 to 4096 bits are accepted/);
  });

  it('refuses an RSA key with a public exponent other than 65537', () => {
    for (const e of [3, 17, 65539]) {
      const refusal = thrown(() => signCsr(ca, csrWithKey(2048, e), { subjectCN: 'agent-e' }));
      expect(refusal.code).toBe('LOOM_ERR_CSR_INVALID');
      expect(refusal.message).toMatch(/public exponent other than 65537/);
    }
  });

  it('refuses a key below 2048 bits, and checks the signature of a key within the limits', () => {
    expect(thrown(() => signCsr(ca, csrWithKey(1024, 65537), { subjectCN: 'agent-s' })).message).toMatch(
      /1024-bit RSA/,
    );
    // Within the limits, the mismatched signature is what is refused.
    expect(thrown(() => signCsr(ca, csrWithKey(4096, 65537), { subjectCN: 'agent-m' })).message).toMatch(
      /signature does not verify/,
    );
  });

  it('signs a CSR for a real 4096-bit key made with Node crypto', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 4096,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.publicKeyFromPem(publicKey);
    csr.setSubject([{ name: 'commonName', value: 'big-but-fine' }]);
    csr.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
    const signed = signCsr(ca, forge.pki.certificationRequestToPem(csr), { subjectCN: 'agent-4096' });
    expect(certificateInfo(signed.certPem).subjectCN).toBe('agent-4096');
  });
});

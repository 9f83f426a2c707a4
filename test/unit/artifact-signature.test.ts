// Deployments are signed by the coordinator and checked by agents against the pinned CA; the v2
// manifest covers every chunk's SHA-256, and round-trips through the bytes that are signed.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCA, createKeyAndCsr, issueServerCert, signCsr } from '../../certs/index.ts';
import {
  checkAgainstManifest,
  chunkManifest,
  decodeDeploymentManifest,
  deploymentManifestOf,
  encodeDeploymentManifest,
  MANIFEST_KIND,
  type ModelRef,
  signDeployment,
  verifyDeployment,
} from '../../shared/protocol/index.ts';

const ca = createCA();
const server = issueServerCert(ca, { hosts: ['127.0.0.1'] });
const model: ModelRef = {
  name: 'mnist',
  version: 7,
  architecture: { kind: 'mlp', inputShape: [784], layers: [10, 10], activation: 'relu' },
};
const sha = 'a'.repeat(64);

describe('deployment signatures', () => {
  it('verifies a deployment signed with the coordinator server key', () => {
    const sig = signDeployment(model, sha, server.keyPem);
    expect(() => verifyDeployment(model, sha, sig, server.certPem, ca.certPem)).not.toThrow();
  });

  it('refuses a deployment whose version, architecture or weights hash was changed', () => {
    const sig = signDeployment(model, sha, server.keyPem);
    for (const [m, h] of [
      [{ ...model, version: 8 }, sha],
      [{ ...model, architecture: { ...model.architecture, layers: [10, 11] } }, sha],
      [model, 'b'.repeat(64)],
    ] as [ModelRef, string][]) {
      expect(() => verifyDeployment(m, h, sig, server.certPem, ca.certPem)).toThrow(
        expect.objectContaining({ code: 'LOOM_ERR_INTEGRITY' }),
      );
    }
  });

  it('refuses a deployment signed by an agent certificate of the same CA', () => {
    const { keyPem, csrPem } = createKeyAndCsr({ commonName: 'agent' });
    const agentCert = signCsr(ca, csrPem, { subjectCN: 'agent-1' }).certPem;
    const sig = signDeployment(model, sha, keyPem);
    expect(() => verifyDeployment(model, sha, sig, agentCert, ca.certPem)).toThrow(/serverAuth/);
  });

  it('refuses a signer from another CA', () => {
    const other = createCA();
    const otherServer = issueServerCert(other, { hosts: ['127.0.0.1'] });
    const sig = signDeployment(model, sha, otherServer.keyPem);
    expect(() => verifyDeployment(model, sha, sig, otherServer.certPem, ca.certPem)).toThrow(
      /pinned Loom CA/,
    );
  });
});

describe('v2 deployment manifests', () => {
  const weights = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7) % 251));
  const whole = createHash('sha256').update(weights).digest('hex');
  const chunks = chunkManifest(weights, 4096);

  it('list one SHA-256 per chunk and round-trip through their signed bytes', () => {
    expect(chunks.chunks).toHaveLength(3);
    expect(chunks.size).toBe(10_000);
    const m = deploymentManifestOf(model, whole, chunks);
    expect(m.kind).toBe(MANIFEST_KIND);
    expect(decodeDeploymentManifest(encodeDeploymentManifest(m))).toEqual(m);
    expect(() => decodeDeploymentManifest(Buffer.from('{"kind":"loom-deployment-v1"}'))).toThrow(
      expect.objectContaining({ code: 'LOOM_ERR_INTEGRITY' }),
    );
    expect(() =>
      decodeDeploymentManifest(encodeDeploymentManifest({ ...m, chunks: m.chunks.slice(1) })),
    ).toThrow(/one hash per chunk/);
  });

  it('sign every chunk hash: a forged list does not verify, and the v1 signature is not the v2 one', () => {
    const sig = signDeployment(model, whole, server.keyPem, chunks);
    const m = verifyDeployment(model, whole, sig, server.certPem, ca.certPem, new Date(), chunks);
    expect(m?.chunks).toEqual(chunks.chunks);
    const forged = { ...chunks, chunks: [chunks.chunks[1], chunks.chunks[0], chunks.chunks[2]] };
    expect(() => verifyDeployment(model, whole, sig, server.certPem, ca.certPem, new Date(), forged)).toThrow(
      /does not verify/,
    );
    expect(() => verifyDeployment(model, whole, sig, server.certPem, ca.certPem)).toThrow(/does not verify/);
  });

  it('refuse weights with a changed or reordered chunk, naming it', () => {
    const m = deploymentManifestOf(model, whole, chunks);
    expect(() => checkAgainstManifest(m, weights)).not.toThrow();
    const changed = Buffer.from(weights);
    changed[5000] ^= 1;
    expect(() => checkAgainstManifest(m, changed)).toThrow(
      expect.objectContaining({ code: 'LOOM_ERR_INTEGRITY', details: { chunk: 1 } }),
    );
    const even = Buffer.from(weights.subarray(0, 8192));
    const m2 = deploymentManifestOf(
      model,
      createHash('sha256').update(even).digest('hex'),
      chunkManifest(even, 4096),
    );
    const swapped = Buffer.concat([even.subarray(4096), even.subarray(0, 4096)]);
    expect(() => checkAgainstManifest(m2, swapped)).toThrow(
      expect.objectContaining({ details: { chunk: 0 } }),
    );
    expect(() => checkAgainstManifest(m, weights.subarray(1))).toThrow(/signed manifest says 10000/);
  });
});

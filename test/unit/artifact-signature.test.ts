// Deployments are signed by the coordinator and checked by agents against the pinned CA.
import { describe, expect, it } from 'vitest';
import { createCA, createKeyAndCsr, issueServerCert, signCsr } from '../../certs/index.ts';
import { type ModelRef, signDeployment, verifyDeployment } from '../../shared/protocol/index.ts';

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

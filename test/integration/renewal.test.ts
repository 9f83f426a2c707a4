// Client certificates are short-lived and renewed over the mTLS channel before they expire.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateInfo } from '../../certs/index.ts';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import { loadIdentity } from '../../edge-agent/index.ts';
import { startTestCluster, type TestCluster, tryConnect, waitUntil } from '../helpers/cluster.ts';

describe('certificate renewal', () => {
  let cluster: TestCluster;
  let agent: EdgeAgent;
  const dataDir = (): string => join(cluster.dir, 'agents', 'site-r');

  beforeAll(async () => {
    cluster = await startTestCluster();
    agent = await cluster.startAgent('site-r', { offset: 0, count: 50 });
    await cluster.waitForAgents(1);
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('does not renew while most of the lifetime is left', async () => {
    const before = await loadIdentity(dataDir());
    await agent.renewIfDue();
    expect((await loadIdentity(dataDir())).certPem).toBe(before.certPem);
  });

  it('renews near expiry, reconnects with the new certificate and retires the old one', async () => {
    const old = await loadIdentity(dataDir());
    const oldInfo = certificateInfo(old.certPem);
    await agent.renewIfDue(new Date(oldInfo.notAfter.getTime() - 60_000));

    const renewed = await loadIdentity(dataDir());
    const info = certificateInfo(renewed.certPem);
    expect(info.serial).not.toBe(oldInfo.serial);
    expect(info.subjectCN).toBe(old.agentId);
    expect(renewed.keyPem).not.toBe(old.keyPem);

    // The new certificate becomes current at the agent's first connection with it.
    await waitUntil(
      async () =>
        (await cluster.coordinator.agents.get(old.agentId)).certSerial === info.serial.toLowerCase(),
      20_000,
      'the renewed certificate to be used',
    );
    await cluster.waitForAgents(1);
    const revoked = await cluster.api<{ serials: string[] }>('/v1/revocations');
    expect(revoked.serials.map((s) => s.replace(/^0+/, ''))).toContain(
      oldInfo.serial.toLowerCase().replace(/^0+/, ''),
    );
    expect(await tryConnect(old.agentUrl, old.certPem, old.keyPem, old.caPem)).toBe(403);
    expect(await tryConnect(old.agentUrl, renewed.certPem, renewed.keyPem, renewed.caPem)).toBe(101);
  });
});

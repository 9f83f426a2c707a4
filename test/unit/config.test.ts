// Coordinator settings: flags over LOOM_* environment over the config file over defaults.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COORDINATOR_DEFAULTS, resolveCoordinatorConfig } from '../../coordinator/config/index.ts';

describe('coordinator config', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loom-config-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('uses the defaults when nothing is set', async () => {
    const config = await resolveCoordinatorConfig(dir, {}, {});
    expect(config).toEqual({ ...COORDINATOR_DEFAULTS, dataDir: dir });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('takes flags over environment over file over defaults', async () => {
    await writeFile(
      join(dir, 'coordinator.json'),
      JSON.stringify({ apiPort: 1001, agentPort: 1002, engine: 'tfjs' }),
    );
    const env = { LOOM_API_PORT: '2001', LOOM_HEARTBEAT_INTERVAL_MS: '500' };
    const config = await resolveCoordinatorConfig(dir, { apiPort: 3001 }, env);
    expect(config.apiPort).toBe(3001);
    expect(config.heartbeatIntervalMs).toBe(500);
    expect(config.agentPort).toBe(1002);
    expect(config.engine).toBe('tfjs');
    expect(config.host).toBe(COORDINATOR_DEFAULTS.host);
  });

  it('refuses an unknown key and names it and where it came from', async () => {
    await writeFile(join(dir, 'coordinator.json'), JSON.stringify({ apiPrt: 1 }));
    await expect(resolveCoordinatorConfig(dir, {}, {})).rejects.toMatchObject({
      code: 'LOOM_ERR_INVALID_CONFIG',
      message: expect.stringMatching(/coordinator\.json: unknown setting "apiPrt"/),
    });
  });

  it('refuses a bad value from the environment, naming the setting', async () => {
    await expect(resolveCoordinatorConfig(dir, {}, { LOOM_AGENT_PORT: 'eighty' })).rejects.toMatchObject({
      code: 'LOOM_ERR_INVALID_CONFIG',
      message: expect.stringMatching(/environment: agentPort/),
    });
    await expect(resolveCoordinatorConfig(dir, {}, { LOOM_ENGINE: 'gpu' })).rejects.toMatchObject({
      message: expect.stringMatching(/engine/),
    });
  });

  it('refuses a config file that is not a JSON object', async () => {
    await writeFile(join(dir, 'coordinator.json'), '[1,2]');
    await expect(resolveCoordinatorConfig(dir, {}, {})).rejects.toMatchObject({
      code: 'LOOM_ERR_INVALID_CONFIG',
    });
  });
});

// The operator's lifecycle commands as a person or a script runs them: real `loom` processes against
// a real coordinator (TLS with its CA pinned by fingerprint, LevelDB in a temp folder) and two MNIST
// agents over mutual TLS: labels, federated evaluations and the cross-site matrix, promotion through
// the validation gate (refused with its reasons, forced by an admin and audited), aliases, rollouts
// followed to their end with plain lines when piped, pause, resume, rollback and retirement.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EdgeAgent } from '../../edge-agent/index.ts';
import { caFingerprintOf } from '../../shared/api-client/index.ts';
import { startTestCluster, type TestCluster, writeMnistSubset } from '../helpers/cluster.ts';
import { loomAsync, type Run } from '../helpers/loom-cli.ts';

/** The command failed with exit code 1 and one `loom: ... [CODE]` line, without a stack trace. */
function expectOneLineError(r: Run, code: string, pattern?: RegExp): void {
  expect(r.status, r.stdout + r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^loom: .*\\[${code}\\]$`));
  if (pattern) expect(lines[0]).toMatch(pattern);
}

function parsed<T>(r: Run): T {
  expect(r.status, r.stderr + r.stdout).toBe(0);
  return JSON.parse(r.stdout) as T;
}

interface Rollout {
  id: string;
  model: string;
  version: number;
  state: string;
  waves: { percent: number; agents: string[]; state: string }[];
  agents: { id: string; state: string; wave: number }[];
}

// Each command is a process of its own, which takes seconds to start on a loaded machine.
describe('loom lifecycle commands', { timeout: 180_000 }, () => {
  let cluster: TestCluster;
  let env: Record<string, string>;
  let siteA: EdgeAgent;
  let siteB: EdgeAgent;
  let idA: string;
  let idB: string;
  const run = (args: string[], extra: Record<string, string> = {}): Promise<Run> =>
    loomAsync(args, { ...env, ...extra });

  beforeAll(async () => {
    cluster = await startTestCluster({ rolloutTickMs: 100, agentOptions: { healthIntervalMs: 150 } });
    env = {
      LOOM_URL: cluster.apiUrl,
      LOOM_TOKEN: cluster.adminToken,
      LOOM_CA_FINGERPRINT: caFingerprintOf(cluster.caPem),
      LOOM_CA_FILE: '',
    };
    const mnist = (offset: number) => (dir: string) => writeMnistSubset(dir, offset, 120);
    [siteA, siteB] = await Promise.all([
      cluster.startAgentWith('site-a', mnist(0), { labels: { site: 'a' } }),
      cluster.startAgentWith('site-b', mnist(120), { labels: { site: 'b' } }),
    ]);
    await cluster.waitForAgents(2);
    idA = siteA.status().agentId;
    idB = siteB.status().agentId;
    await cluster.api('/v1/models', {
      name: 'digits',
      architecture: { kind: 'mlp', inputShape: [784], layers: [16, 10] },
    });
    // Two rounds: versions 2 and 3; the job evaluates its final version on the sites' hold-out data.
    const job = await cluster.api<{ id: string }>('/v1/jobs', {
      model: 'digits',
      rounds: 2,
      minClients: 2,
      learningRate: 0.1,
    });
    expect((await cluster.waitForJob(job.id)).state).toBe('completed');
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it('has help for the new groups and commands', async () => {
    const [evaluations, rollouts, models, follow] = await Promise.all([
      run(['evaluations', '--help']),
      run(['rollouts', '--help']),
      run(['models', '--help']),
      run(['rollouts', 'show', '--help']),
    ]);
    expect(evaluations.stdout).toMatch(/^ {2}start .*\n {2}show /m);
    expect(rollouts.stdout).toMatch(
      /^ {2}start .*\n {2}list .*\n {2}show .*\n {2}pause .*\n {2}resume .*\n {2}rollback /m,
    );
    expect(models.stdout).toMatch(/^ {2}promote .*\n {2}alias .*\n {2}retire /m);
    expect(follow.stdout).toMatch(/Usage: loom rollouts show ID \[--follow\]/);
    const tooFew = await run(['agents', 'label']);
    expectOneLineError(
      tooFew,
      'LOOM_ERR_INVALID_ARGUMENT',
      /expected at least 1 argument \(ID \[KEY=VALUE \.\.\.\]\)/,
    );
  });

  it('sets and removes agent labels, and lists agents by label', async () => {
    const set = parsed<{ id: string; labels: Record<string, string> }>(
      await run(['agents', 'label', idA, 'tier=edge', 'region=eu', '--json']),
    );
    expect(set).toMatchObject({ id: idA, labels: { site: 'a', tier: 'edge', region: 'eu' } });
    const removed = await run(['agents', 'label', idA, '--remove', 'region']);
    expect(removed.status, removed.stderr).toBe(0);
    expect(removed.stdout.trim()).toBe(`Agent ${idA} (site-a) labels: site=a, tier=edge`);
    const [byLabel, table, bad] = await Promise.all([
      run(['agents', 'list', '--label', 'tier=edge', '--json']),
      run(['agents', 'list']),
      run(['agents', 'label', idA, 'no-equals-sign']),
    ]);
    expect(parsed<{ agents: { id: string }[] }>(byLabel).agents.map((a) => a.id)).toEqual([idA]);
    expect(table.stdout).toMatch(/ +LABELS$/m);
    expect(table.stdout).toMatch(/site=b$/m);
    expectOneLineError(bad, 'LOOM_ERR_INVALID_ARGUMENT', /KEY=VALUE/);
  });

  it("evaluates a version on the labelled sites' hold-out data and shows the cross-site matrix", async () => {
    const evaluation = parsed<{
      id: string;
      state: string;
      version: number;
      results: { agentId: string; numExamples: number; accuracy: number }[];
      aggregate: { accuracy: number; numExamples: number };
    }>(await run(['evaluations', 'start', 'digits', '2', '--label', 'site=a', '--wait', '--json']));
    // 120 images at site-a, of which 10% (12) are its hold-out part.
    expect(evaluation).toMatchObject({ state: 'completed', version: 2, aggregate: { numExamples: 12 } });
    expect(evaluation.results.map((r) => [r.agentId, r.numExamples])).toEqual([[idA, 12]]);

    const started = await run(['evaluations', 'start', 'digits', '2', '--agents', `${idA},${idB}`]);
    expect(started.status, started.stderr).toBe(0);
    expect(started.stdout).toMatch(
      /^Started evaluation \S+ of digits v2 on 2 agent\(s\); see it with: loom evaluations show digits \S+$/m,
    );

    const [one, matrix, matrixJson, none] = await Promise.all([
      run(['evaluations', 'show', 'digits', evaluation.id]),
      run(['evaluations', 'show', 'digits']),
      run(['evaluations', 'show', 'digits', '--json']),
      run(['evaluations', 'start', 'digits', '2', '--label', 'site=nowhere']),
    ]);
    expect(one.stdout).toMatch(new RegExp(`^evaluation: +${evaluation.id}$`, 'm'));
    expect(one.stdout).toMatch(
      /^aggregate: +accuracy \d\.\d{4} {2}loss \d+\.\d{4} {2}12 hold-out examples at 1 site\(s\)$/m,
    );
    expect(one.stdout).toMatch(/^AGENT +NAME +EXAMPLES +LOSS +ACCURACY +TIME$/m);
    expect(one.stdout).toMatch(new RegExp(`^${idA} +site-a +12 +\\d`, 'm'));
    // The job evaluated v3 on both sites; the matrix has a column per site.
    expect(matrix.stdout).toMatch(/^VERSION +ACCURACY +LOSS +EXAMPLES +site-a +site-b$/m);
    expect(matrix.stdout).toMatch(/^v3 +\d\.\d{4} +\d+\.\d{4} +24 +\d\.\d{4} +\d\.\d{4}$/m);
    const m = parsed<{
      matrix: { agents: string[]; versions: { version: number }[] };
      evaluations: unknown[];
    }>(matrixJson);
    expect(m.matrix.agents.sort()).toEqual([idA, idB].sort());
    expect(m.matrix.versions.map((v) => v.version)).toContain(3);
    expect(m.evaluations.length).toBeGreaterThanOrEqual(2);
    expectOneLineError(none, 'LOOM_ERR_NO_TARGETS', /site=nowhere/);
  });

  it('prints the reasons of a gate refusal, refuses force to an operator, and audits an admin override', async () => {
    await cluster.api('/v1/models/digits/policy', { metric: 'accuracy', min: 0.99 }, 'PUT');
    const refused = await run(['models', 'promote', 'digits', '3']);
    expect(refused.status).toBe(1);
    const lines = refused.stderr.trim().split('\n');
    expect(lines[0]).toBe('loom: the validation gate refused digits v3 for production [LOOM_ERR_GATE]:');
    expect(lines[1]).toMatch(
      // The gate judges by the worse of the capped weighted figure and the median across sites.
      /^ {2}- accuracy 0\.\d{4}( \(the median across sites\))? is below the policy's min 0\.99(00)? \(evaluation \S+, 24 hold-out examples\)$/,
    );
    expect(lines.at(-1)).toMatch(/--force --reason TEXT$/);
    const refusedJson = await run(['models', 'promote', 'digits', '3', '--json']);
    expect(refusedJson.status).toBe(1);
    expect(JSON.parse(refusedJson.stdout)).toMatchObject({
      error: { code: 'LOOM_ERR_GATE', reasons: [expect.stringMatching(/below the policy's min 0\.99/)] },
    });

    const operator = parsed<{ token: string }>(
      await run(['tokens', 'create', '--name', 'ops', '--role', 'operator', '--json']),
    );
    const asOperator = await run(['models', 'promote', 'digits', '3', '--force', '--reason', 'x'], {
      LOOM_TOKEN: operator.token,
    });
    expectOneLineError(asOperator, 'LOOM_ERR_FORBIDDEN', /force needs the admin role/);
    expectOneLineError(
      await run(['models', 'promote', 'digits', '3', '--force']),
      'LOOM_ERR_INVALID_ARGUMENT',
      /--force needs --reason/,
    );

    const forced = parsed<{
      model: string;
      version: number;
      stage: string;
      forced: boolean;
      rollout: Rollout;
    }>(
      await run([
        'models',
        'promote',
        'digits',
        '3',
        '--force',
        '--reason',
        'urgent fix for site-b',
        '--health-window',
        '0',
        '--json',
      ]),
    );
    // The promotion started a rollout planned by the flags: every agent, one wave.
    expect(forced).toMatchObject({
      model: 'digits',
      version: 3,
      stage: 'production',
      forced: true,
      rollout: { model: 'digits', version: 3, target: { all: true }, policy: { healthWindowSec: 0 } },
    });
    const [audit, followed] = await Promise.all([
      run(['audit', 'list', '--action', 'version.stage.force', '--json']),
      run(['rollouts', 'show', forced.rollout.id, '--follow']),
    ]);
    expect(followed.status, followed.stdout + followed.stderr).toBe(0);
    expect(followed.stdout.trim().split('\n').at(-1)).toMatch(
      /completed in .*: digits v3 active on 2 of 2 agents$/,
    );
    const entries = parsed<{
      entries: { actor: string; target: string; details: Record<string, unknown> }[];
    }>(audit).entries;
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      target: 'digits@3',
      details: { to: 'production', reason: 'urgent fix for site-b', force: true },
    });
    expect(entries[0].details.gateOverridden).toEqual([expect.stringMatching(/below the policy's min/)]);
  });

  it('points an alias at a version, promotes through it, and removes it', async () => {
    const alias = parsed<{ alias: string; version: number }>(
      await run(['models', 'alias', 'digits', 'challenger', '2', '--json']),
    );
    expect(alias).toMatchObject({ alias: 'challenger', version: 2 });
    const staged = await run(['models', 'promote', 'digits', 'challenger', '--stage', 'staging']);
    expect(staged.status, staged.stderr).toBe(0);
    expect(staged.stdout.trim()).toBe('Moved digits v2 to staging (aliases: challenger)');
    const [deleted, missing, noVersion] = await Promise.all([
      run(['models', 'alias', 'digits', 'challenger', '--delete']),
      run(['models', 'alias', 'digits', 'nobody', '--delete']),
      run(['models', 'alias', 'digits', 'champion']),
    ]);
    expect(deleted.stdout.trim()).toBe('Removed alias challenger of digits');
    expectOneLineError(missing, 'LOOM_ERR_NOT_FOUND');
    expectOneLineError(noVersion, 'LOOM_ERR_INVALID_ARGUMENT', /give the VERSION/);
  });

  it('promotes through the gate and follows the rollout in two waves with plain lines when piped', async () => {
    await cluster.api('/v1/models/digits/policy', { metric: 'accuracy', min: 0 }, 'PUT');
    const r = await run([
      'models',
      'promote',
      'digits',
      '2',
      '--waves',
      '50,100',
      '--health-window',
      '0.3',
      '--follow',
    ]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout.includes('\u001b[')).toBe(false);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('Promoted digits v2 to production; it passed the validation gate');
    expect(lines[1]).toMatch(
      /^Started rollout (rollout-\S+) of digits v2 to all agents: 2 agent\(s\) in waves 50% \(1\), 100% \(1\), health window 0\.3 s$/,
    );
    expect(lines[2]).toMatch(
      /^following rollout rollout-\S+ \(digits v2 to all agents, waves 50%, 100%, health window 0\.3 s\)$/,
    );
    expect(r.stdout).toMatch(
      /^wave 1\/2 {2}50% {2}passed {2}1 agent: 1 active {2}health: \d+ requests, errors .* \(max 1%\), p99 .* \(max 1,000 ms\)/m,
    );
    expect(r.stdout).toMatch(/^wave 2\/2 {2}100% {2}passed {2}1 agent: 1 active/m);
    expect(lines.at(-1)).toMatch(
      /^rollout rollout-\S+ completed in \d.*: digits v2 active on 2 of 2 agents$/,
    );
    // Each line says something new.
    expect(new Set(lines).size).toBe(lines.length);
  });

  it('starts, lists, shows, pauses, resumes and rolls back rollouts', async () => {
    const started = parsed<Rollout>(
      await run(['rollouts', 'start', 'digits', '3', '--agents', idA, '--health-window', '60', '--json']),
    );
    expect(started).toMatchObject({ model: 'digits', version: 3, state: 'running' });
    expect(started.agents.map((a) => a.id)).toEqual([idA]);
    const [busy, pause] = await Promise.all([
      run(['rollouts', 'start', 'digits', '3']),
      run(['rollouts', 'pause', started.id, '--json']),
    ]);
    expectOneLineError(busy, 'LOOM_ERR_ROLLOUT_ACTIVE');
    expect(parsed<Rollout>(pause).state).toBe('paused');
    const resumed = await run(['rollouts', 'resume', started.id]);
    expect(resumed.stdout.trim()).toBe(`Resumed rollout ${started.id} of digits v3 at wave 1/1`);
    const [list, listJson, show, again] = await Promise.all([
      run(['rollouts', 'list', '--model', 'digits']),
      run(['rollouts', 'list', '--json', '--state', 'running']),
      run(['rollouts', 'show', started.id]),
      run(['rollouts', 'resume', started.id]),
    ]);
    expect(list.stdout).toMatch(/^ID +MODEL +VERSION +STATE +WAVE +AGENTS +TARGET +CREATED$/m);
    expect(list.stdout).toMatch(
      new RegExp(`^${started.id} +digits +v3 +running +1/1 +[01]/1 active +agents ${idA} `, 'm'),
    );
    expect(list.stdout).toMatch(/^rollout-\S+ +digits +v2 +completed +2\/2 +2\/2 active +all agents /m);
    expect(parsed<{ rollouts: Rollout[] }>(listJson).rollouts.map((x) => x.id)).toEqual([started.id]);
    expect(show.stdout).toMatch(new RegExp(`^rollout: +${started.id}$`, 'm'));
    expect(show.stdout).toMatch(
      /^health limits: +window 60 s, errors at most 1%, p99 at most 1,000 ms, at least 0 requests; a wave fails when more than 50% of its agents fail$/m,
    );
    expect(show.stdout).toMatch(/^WAVE +SHARE +STATE +AGENTS +REQUESTS +ERRORS +P99 +TIME +NOTE$/m);
    expect(show.stdout).toMatch(/^AGENT +NAME +WAVE +STATE +PREVIOUS +UPDATED +REASON$/m);
    expect(show.stdout).toMatch(new RegExp(`^${idA} +site-a +1 +\\S+ +v2 `, 'm'));
    expectOneLineError(again, 'LOOM_ERR_ROLLOUT_STATE');

    const rolledBack = await run(['rollouts', 'rollback', started.id]);
    expect(rolledBack.status, rolledBack.stderr).toBe(0);
    expect(rolledBack.stdout).toMatch(new RegExp(`^Rolling back rollout ${started.id}: `));
    // Following a rollout that was rolled back ends at once, with exit code 1.
    const [follow, followJson, missing] = await Promise.all([
      run(['rollouts', 'show', started.id, '--follow']),
      run(['rollouts', 'show', started.id, '--follow', '--json']),
      run(['rollouts', 'show', 'rollout-nope', '--follow']),
    ]);
    expect(follow.status).toBe(1);
    expect(follow.stdout.trim().split('\n').at(-1)).toMatch(
      new RegExp(`^rollout ${started.id} rolled back after `),
    );
    expect(followJson.status).toBe(1);
    expect(JSON.parse(followJson.stdout.trim().split('\n').at(-1)!)).toMatchObject({ state: 'rolled-back' });
    expectOneLineError(missing, 'LOOM_ERR_NOT_FOUND');
  });

  it('retires a version in favour of its successor', async () => {
    const retired = parsed<{ version: number; successor: number; graceSec: number; sunsetAt: string }>(
      await run(['models', 'retire', 'digits', '3', '--successor', '2', '--grace', '60', '--json']),
    );
    expect(retired).toMatchObject({ version: 3, successor: 2, graceSec: 60 });
    const twice = await run(['models', 'retire', 'digits', '3', '--successor', '2']);
    expectOneLineError(twice, 'LOOM_ERR_CONFLICT', /retired already/);
  });
});

// Usage, summary and flags of the operator commands (clients of the operator API), apart from the
// commands so `--help` answers without loading them.
import type { CommandSpec, FlagSpec } from '../args.ts';
import { operatorSpec } from './connection.ts';

const page: Record<string, FlagSpec> = {
  limit: { type: 'string', description: 'show at most this many', default: 'all' },
};

// --- models -----------------------------------------------------------------------------------

export const modelsListSpec: CommandSpec = operatorSpec({
  usage: 'loom models list [--limit N] [--json]',
  summary: 'Lists the registered models: name, latest version, parameters, input shape, classes, created.',
  flags: page,
  json: 'print one JSON object {models: [...]}',
});

export const modelsShowSpec: CommandSpec = operatorSpec({
  usage: 'loom models show NAME [--json]',
  summary: 'Shows one model: its architecture, its latest and deployed versions and the latest metrics.',
  positionals: [{ name: 'NAME', description: 'name of the model' }],
  json: 'print the model as one JSON object (GET /v1/models/:name)',
});

export const modelsCreateSpec: CommandSpec = operatorSpec({
  usage:
    'loom models create NAME (--mlp INPUT:UNITS,...,CLASSES | --logistic INPUT:CLASSES | --cnn |\n' +
    '                         --architecture-file FILE [--weights-file weights.bin]) [--description TEXT] [--json]',
  summary:
    'Registers a model with its initial weights as version 1. --mlp 784:200,200,10 is a multi-layer\n' +
    'perceptron on 784 inputs (the last number is the classes), --logistic 4:3 a logistic regression;\n' +
    '--cnn the convolutional network of the FedAvg paper on 28×28×1 images with 10 classes;\n' +
    '--architecture-file takes an architecture as JSON ({"kind": ...}) or a TensorFlow.js model.json,\n' +
    'with its weights.bin from --weights-file (without it, the weights are initialised).',
  flags: {
    mlp: {
      type: 'string',
      description: 'multi-layer perceptron: INPUT:UNITS,...,CLASSES (e.g. 784:200,200,10)',
    },
    logistic: { type: 'string', description: 'logistic regression: INPUT:CLASSES (e.g. 4:3)' },
    cnn: {
      type: 'boolean',
      description: 'the FedAvg paper CNN (28×28×1, 10 classes; other shapes via --architecture-file)',
    },
    'architecture-file': {
      type: 'string',
      description:
        'JSON architecture {"kind": "mlp" | "logistic" | "cnn" | "tfjs", ...}, or a TensorFlow.js model.json',
    },
    'weights-file': { type: 'string', description: 'weights.bin of the model.json of --architecture-file' },
    description: { type: 'string', description: 'what the model is for' },
  },
  positionals: [{ name: 'NAME', description: 'name of the new model' }],
  json: 'print the new model with its version 1 as one JSON object',
});

export const modelsVersionsSpec: CommandSpec = operatorSpec({
  usage: 'loom models versions NAME [--job ID] [--limit N] [--json]',
  summary:
    'Lists the versions of a model with their lineage: parent, job and round, agents, examples and the\n' +
    'training metrics (medians of what the agents reported).',
  flags: { job: { type: 'string', description: 'only the versions this job wrote' }, ...page },
  positionals: [{ name: 'NAME', description: 'name of the model' }],
  json: 'print one JSON object {versions: [...]}',
});

export const modelsDownloadSpec: CommandSpec = operatorSpec({
  usage: 'loom models download NAME VERSION --out DIR [--json]',
  summary:
    'Downloads a version as a TensorFlow.js model (DIR/model.json and DIR/weights.bin, loadable with\n' +
    'tf.loadLayersModel) and checks the weights against the SHA-256 the version records. VERSION may be "latest".',
  flags: {
    out: { type: 'string', description: 'folder to write model.json and weights.bin into', required: true },
  },
  positionals: [
    { name: 'NAME', description: 'name of the model' },
    { name: 'VERSION', description: 'version number, or latest' },
  ],
  json: 'print one JSON object {model, version, dir, files, bytes, sha256}',
});

// --- jobs -------------------------------------------------------------------------------------

/** `loom jobs start` flags and the `POST /v1/jobs` field each one sets. */
export const JOB_OPTION_FLAGS: Record<
  string,
  FlagSpec & { field: string; kind: 'int' | 'number' | 'string' }
> = {
  rounds: { type: 'string', field: 'rounds', kind: 'int', description: 'federated rounds', default: '5' },
  'clients-per-round': {
    type: 'string',
    field: 'clientsPerRound',
    kind: 'int',
    description: 'agents asked per round',
    default: 'all online agents',
  },
  fraction: {
    type: 'string',
    field: 'fraction',
    kind: 'number',
    description: 'share of the online agents asked per round (not with --clients-per-round)',
  },
  'min-clients': {
    type: 'string',
    field: 'minClients',
    kind: 'int',
    description: 'quorum of a round',
    default: '1',
  },
  'round-timeout': {
    type: 'string',
    field: 'roundTimeoutSec',
    kind: 'number',
    description: 'deadline of a round, in seconds',
    default: '300',
  },
  epochs: {
    type: 'string',
    field: 'epochs',
    kind: 'int',
    description: 'local epochs per round',
    default: '1',
  },
  'batch-size': {
    type: 'string',
    field: 'batchSize',
    kind: 'int',
    description: 'local batch size',
    default: '32',
  },
  'learning-rate': {
    type: 'string',
    field: 'learningRate',
    kind: 'number',
    description: 'local SGD learning rate',
    default: '0.05',
  },
  'base-version': {
    type: 'string',
    field: 'baseVersion',
    kind: 'int',
    description: 'registry version to start from',
    default: "the model's latest",
  },
  'version-every': {
    type: 'string',
    field: 'versionEvery',
    kind: 'int',
    description: 'register a version every N rounds',
    default: '1',
  },
  'server-learning-rate': {
    type: 'string',
    field: 'serverLearningRate',
    kind: 'number',
    description: 'server step size (1 is plain FedAvg)',
    default: '1',
  },
  'max-update-norm': {
    type: 'string',
    field: 'maxUpdateNorm',
    kind: 'number',
    description: 'refuse updates with a larger L2 norm',
  },
  'weight-cap-ratio': {
    type: 'string',
    field: 'weightCapRatio',
    kind: 'number',
    description: "cap of an agent's weight, times the median dataset size (0: none)",
    default: '1.5',
  },
  'clip-factor': {
    type: 'string',
    field: 'clipFactor',
    kind: 'number',
    description: 'clip updates to this times the median norm (0: none)',
    default: '1.5',
  },
  engine: {
    type: 'string',
    field: 'engine',
    kind: 'string',
    description: 'typed-array or tfjs',
    default: 'the setting',
  },
};

export const jobsStartSpec: CommandSpec = operatorSpec({
  usage:
    'loom jobs start --model NAME [--rounds N] [--clients-per-round N | --fraction F] [--min-clients N]\n' +
    '                       [--epochs N] [--batch-size N] [--learning-rate LR] [... see below] [--watch] [--json]',
  summary:
    'Starts a federated training job (POST /v1/jobs). Options not given take the server defaults; with\n' +
    '--config FILE the job is read from a JSON file and flags override it. --watch follows it as "loom jobs watch" does.',
  flags: {
    model: { type: 'string', description: 'the registered model to train' },
    config: { type: 'string', description: 'JSON file with the job (the body of POST /v1/jobs)' },
    ...Object.fromEntries(
      Object.entries(JOB_OPTION_FLAGS).map(([k, { field: _f, kind: _k, ...f }]) => [k, f]),
    ),
    'exclude-agent': { type: 'string', multiple: true, description: 'agent id never sampled for this job' },
    label: {
      type: 'string',
      multiple: true,
      description: 'KEY=VALUE: only agents carrying every such label train for this job',
    },
    'allow-concurrent': {
      type: 'boolean',
      description: 'run although another job of the model is running',
    },
    watch: { type: 'boolean', description: 'follow the job until it ends (exit code as "loom jobs watch")' },
  },
  json: 'print the new job as one JSON object (with --watch: one JSON line per event)',
});

export const jobsListSpec: CommandSpec = operatorSpec({
  usage: 'loom jobs list [--state S] [--model NAME] [--limit N] [--json]',
  summary: 'Lists jobs, newest first: id, model, state, rounds done, latest version, created, duration.',
  flags: {
    state: { type: 'string', description: 'pending, running, completed, failed or cancelled' },
    model: { type: 'string', description: 'only the jobs of this model' },
    ...page,
  },
  json: 'print one JSON object {jobs: [...]}',
});

export const jobsShowSpec: CommandSpec = operatorSpec({
  usage: 'loom jobs show ID [--json]',
  summary:
    'Shows a job: its settings, state and error, every round (sampled, participants, failures,\n' +
    'examples, training metrics, version, time), the round in progress, excluded agents and warnings.',
  positionals: [{ name: 'ID', description: 'id of the job' }],
  json: 'print the job as one JSON object (GET /v1/jobs/:id)',
});

export const jobsWatchSpec: CommandSpec = operatorSpec({
  usage: 'loom jobs watch ID [--json]',
  summary:
    "Follows a job's events until it ends: the round, agents sampled, reported and failed, and the\n" +
    'metrics so far. In a terminal the display redraws in place; piped, it prints one line per event.\n' +
    'Exits 0 when the job completed, 1 when it failed or was cancelled.',
  positionals: [{ name: 'ID', description: 'id of the job' }],
  json: 'print one JSON line per event ({event, id?, data})',
});

export const jobsCancelSpec: CommandSpec = operatorSpec({
  usage: 'loom jobs cancel ID [--json]',
  summary: 'Cancels a running job: the round in flight stops, the versions already written stay.',
  positionals: [{ name: 'ID', description: 'id of the job' }],
  json: 'print the job as one JSON object',
});

export const jobsCompareSpec: CommandSpec = operatorSpec({
  usage: 'loom jobs compare A B [--json]',
  summary:
    'Shows two jobs side by side: their hyper-parameters (differences marked with *), outcome, the\n' +
    'agents of each with the software and data fingerprint they claimed (a fingerprint marked * changed\n' +
    'during the job), and the training metrics, hold-out accuracy, participants and time of each round.',
  positionals: [
    { name: 'A', description: 'id of the first job' },
    { name: 'B', description: 'id of the second job' },
  ],
  json: 'print one JSON object {jobs: [A, B], settings: [{name, a, b, differs}], agents: [{agentId, a, b, differs}], rounds: [...]}',
});

// --- agents and tokens ------------------------------------------------------------------------

export const agentsListSpec: CommandSpec = operatorSpec({
  usage: 'loom agents list [--online] [--revoked] [--name NAME] [--label KEY=VALUE] [--limit N] [--json]',
  summary:
    'Lists the enrolled agents: id, name, online, last seen, software version, backend, examples, the\n' +
    'model versions they acknowledged, their labels, and whether they are revoked.',
  flags: {
    online: { type: 'boolean', description: 'only the agents connected now' },
    revoked: { type: 'boolean', description: 'only the revoked agents' },
    name: { type: 'string', description: 'only the agents with this name' },
    label: { type: 'string', description: 'only the agents with this label KEY=VALUE' },
    ...page,
  },
  json: 'print one JSON object {agents: [...]}',
});

export const agentsShowSpec: CommandSpec = operatorSpec({
  usage: 'loom agents show ID [--json]',
  summary: 'Shows one agent: connection, software, data size, certificate, models and revocation.',
  positionals: [{ name: 'ID', description: 'id of the agent' }],
  json: 'print the agent as one JSON object (GET /v1/agents/:id)',
});

export const agentsRevokeSpec: CommandSpec = operatorSpec({
  usage: 'loom agents revoke ID [--json]',
  summary:
    'Revokes an agent (operator role): its certificate is refused from now on and a connected agent is\n' +
    'disconnected at once. It can come back only by enrolling again, as a new agent.',
  positionals: [{ name: 'ID', description: 'id of the agent' }],
  json: 'print the revoked agent as one JSON object (with disconnected)',
});

export const agentsEnrollmentTokenSpec: CommandSpec = operatorSpec({
  usage: 'loom agents enrollment-token [--ttl SECONDS] [--json]',
  summary:
    'Makes a one-time enrollment token (operator role) for "loom agent enroll" on a new site. It carries\n' +
    "the CA fingerprint the site pins, and expires (the coordinator's enrollmentTokenTtlSec by default).",
  flags: {
    ttl: { type: 'string', description: 'lifetime in seconds (at most 30 days)', default: 'the setting' },
  },
  json: 'print one JSON object {token, expiresAt}',
});

export const tokensCreateSpec: CommandSpec = operatorSpec({
  usage: 'loom tokens create --name NAME --role admin|operator|viewer [--json]',
  summary:
    'Makes an API token (admin role) and prints it once: only its hash is stored. viewer may read,\n' +
    'operator may also change state, admin may do everything.',
  flags: {
    name: {
      type: 'string',
      description: 'who or what the token is for (the audit log names it)',
      required: true,
    },
    role: { type: 'string', description: 'admin, operator or viewer', required: true },
  },
  json: 'print one JSON object {id, token, role, name}',
});

export const tokensListSpec: CommandSpec = operatorSpec({
  usage: 'loom tokens list [--role R] [--revoked] [--limit N] [--json]',
  summary: 'Lists the API tokens (admin role): id, name, role, created, revoked. Never a token or its hash.',
  flags: {
    role: { type: 'string', description: 'only tokens of this role' },
    revoked: { type: 'boolean', description: 'only revoked tokens' },
    ...page,
  },
  json: 'print one JSON object {tokens: [...]}',
});

export const tokensRevokeSpec: CommandSpec = operatorSpec({
  usage: 'loom tokens revoke ID [--json]',
  summary: 'Revokes an API token (admin role) from its next call. The last admin token cannot be revoked.',
  positionals: [{ name: 'ID', description: 'id of the token (the <id> of loom_<id>_<secret>)' }],
  json: 'print the revoked token as one JSON object',
});

// --- audit ------------------------------------------------------------------------------------

export const auditListSpec: CommandSpec = operatorSpec({
  usage: 'loom audit list [--after SEQ] [--limit N] [--actor NAME] [--action ACTION] [--json]',
  summary:
    'Lists audit entries in order: seq, time, actor, action, target and details. --actor and --action\n' +
    'filter within the page of --limit entries after --after (as the API does); the next page is named.',
  flags: {
    after: { type: 'string', description: 'only entries after this seq', default: '0' },
    limit: { type: 'string', description: 'entries scanned (at most 1000)', default: '100' },
    actor: { type: 'string', description: 'only entries of this actor (a token name)' },
    action: { type: 'string', description: 'only entries of this action (e.g. agent.revoke)' },
  },
  json: 'print one JSON object {entries, next?, chain}',
});

export const auditVerifySpec: CommandSpec = operatorSpec({
  usage: 'loom audit verify [--data-dir DIR] [--json]',
  summary:
    'Checks the hash chain of the audit log and names the first broken entry; exits 1 when it is broken.\n' +
    "With --data-dir it reads the coordinator's database itself (a running coordinator is asked over its\n" +
    'local admin socket instead); without it, it reads every entry from the API and checks the chain here,\n' +
    "as well as reporting the coordinator's own check against its durable head.",
  note: 'Without --data-dir it connects like the other operator commands (--url, --token-file, --ca-fingerprint).',
  flags: {
    'data-dir': {
      type: 'string',
      description: 'data dir of the coordinator: check offline, without the API',
    },
  },
  json: 'print one JSON object {ok, entries, brokenAt?, reason?, entry?, source}',
});

// --- lifecycle: stages, aliases, retirement ---------------------------------------------------

/** Flags of a rollout's waves and health limits (`rollouts start`, `models promote`). */
const rolloutFlags: Record<string, FlagSpec> = {
  waves: {
    type: 'string',
    description: 'percent of the targets reached after each wave, increasing, ending at 100 (e.g. 10,50,100)',
    default: '100',
  },
  'health-window': {
    type: 'string',
    description: 'seconds each wave is watched once its agents run the version',
    default: '60',
  },
  'max-error-rate': {
    type: 'string',
    description: 'largest share of failed predictions a wave may have, 0 to 1',
    default: '0.01',
  },
  'max-p99-ms': { type: 'string', description: 'largest 99th percentile latency, ms', default: '1000' },
  'min-requests': {
    type: 'string',
    description: 'predictions a wave must answer before it can pass',
    default: '0',
  },
  'fail-quorum': {
    type: 'string',
    description: "share of a wave's agents that must fail for the wave to fail, 0 to 1 (0: any one)",
    default: '0.5',
  },
};

/** Flags that choose agents by label or by id. */
const targetFlags: Record<string, FlagSpec> = {
  label: {
    type: 'string',
    multiple: true,
    description: 'only agents with this label KEY=VALUE',
  },
  agents: { type: 'string', description: 'only these agents: ID,ID,...' },
};

export const modelsPromoteSpec: CommandSpec = operatorSpec({
  usage:
    'loom models promote NAME VERSION [--stage production|staging|archived|none] [--force --reason TEXT]\n' +
    '                          [--waves 50,100] [--health-window S] [--max-error-rate X] [--max-p99-ms N]\n' +
    '                          [--min-requests N] [--label KEY=VALUE ... | --agents ID,...] [--follow] [--json]',
  summary:
    "Moves a version to a stage (production by default). Production passes the model's validation gate\n" +
    '(its promotion policy against the latest federated evaluation and the current production version) or\n' +
    'is refused with the reasons; an admin may --force it with a --reason, which the audit log records.\n' +
    'A promotion to production starts a rollout of the version to the agents; the rollout flags plan it\n' +
    "(what they leave out comes from the model's policy, then the defaults: every agent, one wave), and\n" +
    '--follow shows it live as "loom rollouts show --follow" does. VERSION may be an alias.',
  flags: {
    stage: { type: 'string', description: 'production, staging, archived or none', default: 'production' },
    force: { type: 'boolean', description: 'pass the gate or a forbidden move (admin role; needs --reason)' },
    reason: { type: 'string', description: 'why, for the audit log (required with --force)' },
    ...rolloutFlags,
    ...targetFlags,
    follow: {
      type: 'boolean',
      description: 'follow the rollout until it ends (exit code as "rollouts show --follow")',
    },
  },
  positionals: [
    { name: 'NAME', description: 'name of the model' },
    { name: 'VERSION', description: 'version number or alias' },
  ],
  json:
    'print one JSON object {model, version, stage, aliases, forced, rollout?} (with --follow, then one JSON line\n' +
    'per change of the rollout); a gate refusal prints {error: {code, message, reasons}}',
});

export const modelsAliasSpec: CommandSpec = operatorSpec({
  usage:
    'loom models alias NAME ALIAS VERSION [--json]\n       loom models alias NAME ALIAS --delete [--json]',
  summary:
    'Points an alias (champion, challenger, any name starting with a letter) at one version of a model,\n' +
    'moving it if it pointed elsewhere; --delete removes it. A version can be named by its alias anywhere.',
  flags: { delete: { type: 'boolean', description: 'remove the alias' } },
  positionals: [
    { name: 'NAME', description: 'name of the model' },
    { name: 'ALIAS', description: 'name of the alias' },
    { name: 'VERSION', description: 'version number it points at (not with --delete)', optional: true },
  ],
  json: 'print one JSON object {alias, version, updatedAt, updatedBy} (with --delete: {model, alias, deleted})',
});

export const modelsRetireSpec: CommandSpec = operatorSpec({
  usage: 'loom models retire NAME VERSION --successor V [--grace SECONDS] [--json]',
  summary:
    'Retires a version in favour of its successor: a rollout moves the agents running it to the successor.\n' +
    'During the grace period inference calls naming the retired version still work, with Deprecation,\n' +
    'Sunset and Link (successor-version) headers; after it they get 410 naming the successor.',
  flags: {
    successor: { type: 'string', description: 'the version that replaces it', required: true },
    grace: { type: 'string', description: 'grace period in seconds', default: '604800 (7 days)' },
  },
  positionals: [
    { name: 'NAME', description: 'name of the model' },
    { name: 'VERSION', description: 'version number to retire' },
  ],
  json: 'print one JSON object {model, version, successor, graceSec, deprecatedAt, sunsetAt, rollout}',
});

// --- evaluations ------------------------------------------------------------------------------

export const evaluationsStartSpec: CommandSpec = operatorSpec({
  usage:
    'loom evaluations start NAME VERSION [--agents ID,... | --label KEY=VALUE ...] [--min-clients N]\n' +
    '                              [--timeout SECONDS] [--wait] [--json]',
  summary:
    "Starts a federated evaluation of a version on the sites' hold-out data (which never leaves them):\n" +
    'every online agent, the ones named, or those with the labels. --wait waits for it to end and shows\n' +
    'each site and the example-weighted aggregate (exit 1 when it failed). VERSION may be an alias.',
  flags: {
    ...targetFlags,
    'min-clients': { type: 'string', description: 'site reports that complete the evaluation', default: '1' },
    timeout: { type: 'string', description: 'seconds to wait for the sites', default: '120' },
    wait: { type: 'boolean', description: 'wait for the evaluation to end and show its results' },
  },
  positionals: [
    { name: 'NAME', description: 'name of the model' },
    { name: 'VERSION', description: 'version number or alias' },
  ],
  json: 'print the evaluation as one JSON object (with --wait: as it ended)',
});

export const evaluationsShowSpec: CommandSpec = operatorSpec({
  usage: 'loom evaluations show NAME [ID] [--json]',
  summary:
    "Without ID: the model's cross-site matrix, each version's accuracy on each site's hold-out data (its\n" +
    'newest completed evaluation) and the aggregate, then the evaluations, newest first. With ID: one\n' +
    "evaluation's state, aggregate, per-site results and failures.",
  flags: { limit: { type: 'string', description: 'evaluations listed', default: '20' } },
  positionals: [
    { name: 'NAME', description: 'name of the model' },
    { name: 'ID', description: 'id of one evaluation', optional: true },
  ],
  json: 'print one JSON object: {matrix, evaluations} without ID, the evaluation with it',
});

// --- rollouts ---------------------------------------------------------------------------------

export const rolloutsStartSpec: CommandSpec = operatorSpec({
  usage:
    'loom rollouts start NAME VERSION [--label KEY=VALUE ... | --agents ID,...] [--waves 10,50,100]\n' +
    '                           [--health-window S] [--max-error-rate X] [--max-p99-ms N] [--min-requests N]\n' +
    '                           [--fail-quorum Q] [--follow] [--json]',
  summary:
    'Rolls a version out to the agents in waves (every agent, or those the labels or ids name). Each wave\n' +
    'advances only after its health window passes within the limits; a failing wave rolls every agent of\n' +
    'the rollout back to the version it ran before. --follow shows it live until it ends.',
  flags: {
    ...targetFlags,
    ...rolloutFlags,
    follow: {
      type: 'boolean',
      description: 'follow the rollout until it ends (exit code as "rollouts show --follow")',
    },
  },
  positionals: [
    { name: 'NAME', description: 'name of the model' },
    { name: 'VERSION', description: 'version number' },
  ],
  json: 'print the new rollout as one JSON object (with --follow: one JSON line per change)',
});

export const rolloutsListSpec: CommandSpec = operatorSpec({
  usage: 'loom rollouts list [--model NAME] [--state S] [--limit N] [--json]',
  summary:
    'Lists rollouts, newest first: id, model, version, state, wave, agents active of targeted, created.',
  flags: {
    model: { type: 'string', description: 'only the rollouts of this model' },
    state: { type: 'string', description: 'running, paused, completed or rolled-back' },
    limit: { type: 'string', description: 'show at most this many', default: '100' },
  },
  json: 'print one JSON object {rollouts: [...]}',
});

export const rolloutsShowSpec: CommandSpec = operatorSpec({
  usage: 'loom rollouts show ID [--follow] [--json]',
  summary:
    'Shows a rollout: each wave (share, state, health against the limits) and each agent (wave, state,\n' +
    'the version it goes back to). --follow redraws it in a terminal, or prints a line on each change when\n' +
    'piped, until it completes (exit 0) or is rolled back (exit 1).',
  flags: {
    follow: { type: 'boolean', description: 'follow it until it ends' },
    interval: { type: 'string', description: 'seconds between two looks with --follow', default: '0.5' },
  },
  positionals: [{ name: 'ID', description: 'id of the rollout' }],
  json: 'print the rollout as one JSON object (with --follow: one JSON line per change)',
});

const rolloutAction = (verb: string, summary: string): CommandSpec =>
  operatorSpec({
    usage: `loom rollouts ${verb} ID [--json]`,
    summary,
    positionals: [{ name: 'ID', description: 'id of the rollout' }],
    json: 'print the rollout as one JSON object',
  });

export const rolloutsPauseSpec = rolloutAction(
  'pause',
  'Pauses a running rollout where it is: no new wave starts and the agents stay on what they run.',
);
export const rolloutsResumeSpec = rolloutAction(
  'resume',
  'Resumes a paused rollout; the wave being watched is watched again for a whole health window.',
);
export const rolloutsRollbackSpec = rolloutAction(
  'rollback',
  'Rolls every agent of a rollout back to the version it ran before (from its local store, no download).',
);

export const agentsLabelSpec: CommandSpec = operatorSpec({
  usage: 'loom agents label ID KEY=VALUE ... [--remove KEY ...] [--json]',
  summary:
    "Sets labels on an agent (site, region, tier, anything) and removes those --remove names; the agent's\n" +
    'other labels stay. Jobs, evaluations and rollouts can target agents by label.',
  flags: { remove: { type: 'string', multiple: true, description: 'label key to remove' } },
  positionals: [
    { name: 'ID', description: 'id of the agent' },
    { name: 'KEY=VALUE', description: 'a label to set', optional: true, variadic: true },
  ],
  json: 'print the agent as one JSON object, with its labels',
});

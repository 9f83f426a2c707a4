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
    'loom models create NAME (--mlp INPUT:UNITS,...,CLASSES | --logistic INPUT:CLASSES |\n' +
    '                         --architecture-file FILE [--weights-file weights.bin]) [--description TEXT] [--json]',
  summary:
    'Registers a model with its initial weights as version 1. --mlp 784:200,200,10 is a multi-layer\n' +
    'perceptron on 784 inputs (the last number is the classes), --logistic 4:3 a logistic regression;\n' +
    '--architecture-file takes an architecture as JSON ({"kind": ...}) or a TensorFlow.js model.json,\n' +
    'with its weights.bin from --weights-file (without it, the weights are initialised).',
  flags: {
    mlp: {
      type: 'string',
      description: 'multi-layer perceptron: INPUT:UNITS,...,CLASSES (e.g. 784:200,200,10)',
    },
    logistic: { type: 'string', description: 'logistic regression: INPUT:CLASSES (e.g. 4:3)' },
    'architecture-file': {
      type: 'string',
      description:
        'JSON architecture {"kind": "mlp" | "logistic" | "tfjs", ...}, or a TensorFlow.js model.json',
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
  usage: 'loom agents list [--online] [--revoked] [--name NAME] [--limit N] [--json]',
  summary:
    'Lists the enrolled agents: id, name, online, last seen, software version, backend, examples, the\n' +
    'model versions they acknowledged, and whether they are revoked.',
  flags: {
    online: { type: 'boolean', description: 'only the agents connected now' },
    revoked: { type: 'boolean', description: 'only the revoked agents' },
    name: { type: 'string', description: 'only the agents with this name' },
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

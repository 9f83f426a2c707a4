// Usage, summary and flags of every `loom` command, kept apart from the commands so `--help`
// answers without loading TensorFlow.js or the servers.
import type { CommandSpec } from './args.ts';

export const coordinatorInitSpec: CommandSpec = {
  usage:
    'loom coordinator init --data-dir DIR [--cert-host NAME_OR_IP ...] [--ca-passphrase-file F] [--force] [--json]',
  summary:
    'Creates a coordinator: its CA (key stays here, mode 0600), a server certificate for its names and\n' +
    'addresses, and the first admin API token, printed once (only its hash is stored). Refuses a data dir\n' +
    'that holds any part of a coordinator (pki/, db/, coordinator.json), naming what it found: a new CA\n' +
    'would orphan every enrolled agent. --force deletes those parts, listing them first, and starts over.',
  flags: {
    'data-dir': { type: 'string', description: 'folder for the coordinator state', required: true },
    'cert-host': {
      type: 'string',
      multiple: true,
      description: 'DNS name or IP address agents and operators use to reach this coordinator',
      default: 'localhost, 127.0.0.1, ::1',
    },
    host: {
      type: 'string',
      multiple: true,
      description: 'old name of --cert-host',
      deprecatedFor: 'cert-host',
    },
    'ca-passphrase-file': {
      type: 'string',
      description:
        'encrypt the CA key on disk under the passphrase on the first line of this file ($LOOM_CA_PASSPHRASE works too); every start then needs it',
    },
    force: {
      type: 'boolean',
      description: 'delete the coordinator already in DIR (its CA, database and settings) and start over',
    },
    json: {
      type: 'boolean',
      description: 'print one JSON object {adminToken, caFingerprint, hosts, removed}',
    },
  },
};

export const coordinatorStartSpec: CommandSpec = {
  usage: 'loom coordinator start --data-dir DIR [--bind ADDR] [--api-port P] [--agent-port P] [--json]',
  summary:
    'Runs the coordinator: the operator API (HTTPS, bearer tokens) and the agent gateway (WSS with client\n' +
    'certificates). Port 0 picks a free port; the ports in use are logged, with an API URL whose host the\n' +
    'server certificate names. Settings come from flags, then LOOM_* environment variables, then\n' +
    'DIR/coordinator.json (the bind address is the setting "host", env LOOM_HOST).',
  flags: {
    'data-dir': { type: 'string', description: 'folder created by "loom coordinator init"', required: true },
    bind: {
      type: 'string',
      description: 'address both servers listen on (0.0.0.0: every IPv4 address, :: every address)',
      default: '0.0.0.0',
    },
    host: { type: 'string', description: 'old name of --bind', deprecatedFor: 'bind' },
    'api-port': { type: 'string', description: 'operator API port', default: '8443' },
    'agent-port': { type: 'string', description: 'agent gateway port', default: '8444' },
    'log-format': { type: 'string', description: 'text or json log lines on stderr', default: 'text' },
    'ignore-store-damage': {
      type: 'boolean',
      description:
        'start although the store check finds damage (the problems are logged and audited as accepted)',
    },
    json: {
      type: 'boolean',
      description: 'print one JSON line {apiUrl, apiPort, agentPort, caFingerprint, backend} when ready',
    },
  },
};

export const coordinatorAdminTokenSpec: CommandSpec = {
  usage: 'loom coordinator admin-token --data-dir DIR [--name NAME] [--json]',
  summary:
    'Creates a new admin API token in a stopped coordinator, for when every admin token is lost or\n' +
    'revoked. Prints it once (only its hash is stored) and records it in the audit log. Stop the\n' +
    'coordinator first: its database is locked while it runs.',
  flags: {
    'data-dir': { type: 'string', description: 'folder created by "loom coordinator init"', required: true },
    name: {
      type: 'string',
      description: 'name of the token, shown in the audit log',
      default: 'recovery admin',
    },
    json: { type: 'boolean', description: 'print one JSON object {adminToken}' },
  },
};

/** Environment variable `loom agent enroll` reads the token from when no token flag is given. */
export const ENROLLMENT_TOKEN_ENV = 'LOOM_ENROLLMENT_TOKEN';

export const agentEnrollSpec: CommandSpec = {
  usage:
    'loom agent enroll --coordinator https://HOST:PORT (--token-file PATH | --token TOKEN) --data-dir DIR\n' +
    '                         [--name NAME] [--label KEY=VALUE]... [--json]',
  summary:
    'Enrolls this host as an edge agent: makes a key pair here (it never leaves the host), pins the\n' +
    "coordinator's CA by the fingerprint inside the token, sends a CSR and saves the signed certificate.\n" +
    `The token comes from --token-file, --token or, when neither is given, $${ENROLLMENT_TOKEN_ENV}.\n` +
    'Prefer the file or the variable: a --token value is visible to other users in the process list.\n' +
    'A DIR that already holds an identity is refused, naming its agent id, unless --force is given.',
  flags: {
    coordinator: { type: 'string', description: 'operator API URL of the coordinator', required: true },
    'token-file': {
      type: 'string',
      description: 'file holding the one-time enrollment token (surrounding whitespace is ignored)',
    },
    token: {
      type: 'string',
      description: `one-time enrollment token (visible in ps; prefer --token-file or $${ENROLLMENT_TOKEN_ENV})`,
    },
    'data-dir': { type: 'string', description: 'folder for the agent identity and models', required: true },
    name: { type: 'string', description: 'display name of this site', default: 'the host name' },
    label: {
      type: 'string',
      multiple: true,
      description: 'a label of this agent (site=berlin, tier=edge...), for rollouts to target',
    },
    force: {
      type: 'boolean',
      description: 'replace the identity DIR already holds (without it, such a DIR is refused)',
    },
    json: {
      type: 'boolean',
      description: 'print one JSON object {agentId, name, agentUrl, replaced?: {agentId, name}}',
    },
  },
};

export const agentStartSpec: CommandSpec = {
  usage:
    'loom agent start --data-dir DIR --data PATH [--format idx|csv|jsonl] [--labels PATH]\n' +
    '                        [--label-column C] [--csv-separator S] [--inference-port P] [--json]\n' +
    '                        [--inference-host ADDR] [--require-api-key] [--inference-tls-cert PEM --inference-tls-key PEM]\n' +
    '                        [--serve-when-revoked] [--data-key-file PATH] [--health-interval SEC]\n' +
    '                        [--keep-versions N] [--threads N] [--max-batch-size N] [--max-queue-delay-ms MS]\n' +
    '                        [--grpc-port P]',
  summary:
    'Runs the edge agent: serves local models over the Open Inference Protocol v2 (also offline), connects\n' +
    'to the coordinator with mutual TLS, trains on the local data when asked and sends back only updates.\n' +
    'The inference API needs an API key once "loom agent api-key create" has made one (health routes stay\n' +
    'open); listening beyond loopback without one logs a warning. A revoked agent stops answering\n' +
    'predictions (503) and stays revoked across restarts until the data dir is enrolled again.',
  flags: {
    'data-dir': { type: 'string', description: 'folder given to "loom agent enroll"', required: true },
    data: {
      type: 'string',
      description: 'local training data: IDX images file, CSV or JSONL',
      required: true,
    },
    format: { type: 'string', description: 'idx, csv or jsonl', default: 'from the file extension' },
    labels: {
      type: 'string',
      description: 'IDX labels file',
      default: 'the images path with labels-idx1 for images-idx3',
    },
    'label-column': { type: 'string', description: 'CSV column holding the label', default: 'label' },
    'csv-separator': {
      type: 'string',
      description: 'CSV column separator: a character such as ";" or "|", or the word tab',
      default: ',',
    },
    'inference-host': {
      type: 'string',
      description: 'address of the inference server',
      default: '127.0.0.1',
    },
    'inference-port': {
      type: 'string',
      description: 'port of the inference server (0: any free port)',
      default: '8501',
    },
    'log-format': { type: 'string', description: 'text or json log lines on stderr', default: 'text' },
    'data-key-file': {
      type: 'string',
      description: 'key file of the model store encryption ($LOOM_DATA_KEY wins when set)',
      default: 'DIR/data.key, made on first start',
    },
    json: {
      type: 'boolean',
      description: 'print one JSON line {agentId, name, inferenceUrl, examples, backend} when ready',
    },
    // Edge serving: revocation policy, API keys and TLS of the inference API.
    'serve-when-revoked': {
      type: 'boolean',
      description:
        'keep answering predictions after the coordinator revokes this agent (default: infer answers 503)',
    },
    'require-api-key': {
      type: 'boolean',
      description: 'refuse inference requests without a live API key even before any key is made',
    },
    'inference-tls-cert': {
      type: 'string',
      description: 'serve the inference API over HTTPS with this PEM certificate (with --inference-tls-key)',
    },
    'inference-tls-key': {
      type: 'string',
      description: 'PEM private key of --inference-tls-cert',
    },
    'health-interval': {
      type: 'string',
      description: 'seconds between serving-health reports to the coordinator (requests, errors, latency)',
      default: '10',
    },
    'keep-versions': {
      type: 'string',
      description: 'versions of each model kept in the local store, for rollbacks without a download',
      default: '3',
    },
    threads: {
      type: 'string',
      description: 'worker threads local training runs on (the fast path); default one per core',
    },
    'grpc-port': {
      type: 'string',
      description:
        'also serve the inference API over gRPC (OIP v2 GRPCInferenceService) on this port (0: any free port)',
      default: 'off',
    },
    'max-batch-size': {
      type: 'string',
      description: 'most examples stacked into one prediction from concurrent inference requests',
      default: '64',
    },
    'max-queue-delay-ms': {
      type: 'string',
      description:
        'longest an inference request waits for others to join its batch (0: only those already waiting)',
      default: '0',
    },
  },
};

// Edge serving: `loom agent api-key create|list|revoke`.
export const agentApiKeyCreateSpec: CommandSpec = {
  usage: 'loom agent api-key create --data-dir DIR [--name NAME] [--json]',
  summary:
    "Makes an API key for this agent's inference API and prints it once (only its SHA-256 is kept, in\n" +
    'DIR/inference-api-keys.json, mode 0600). From the first key on, every inference route but\n' +
    '/v2/health/live and /v2/health/ready needs "Authorization: Bearer <key>". A running agent picks\n' +
    'the change up within a second; the agent need not run.',
  flags: {
    'data-dir': { type: 'string', description: 'data dir of the agent', required: true },
    name: {
      type: 'string',
      description: 'who or what the key is for (shown by list)',
      default: 'inference client',
    },
    json: { type: 'boolean', description: 'print one JSON object {id, name, createdAt, key}' },
  },
};

export const agentApiKeyListSpec: CommandSpec = {
  usage: 'loom agent api-key list --data-dir DIR [--json]',
  summary: 'Lists the inference API keys of this agent: id, name, created, revoked. Never a key or its hash.',
  flags: {
    'data-dir': { type: 'string', description: 'data dir of the agent', required: true },
    json: {
      type: 'boolean',
      description: 'print one JSON object {keys: [{id, name, createdAt, revoked, revokedAt?}]}',
    },
  },
};

export const agentApiKeyRevokeSpec: CommandSpec = {
  usage: 'loom agent api-key revoke ID --data-dir DIR [--json]',
  summary:
    'Revokes an inference API key: a running agent refuses it within a second. Revoking every key does\n' +
    'not open the API: it stays closed until a new key is made (or the key file is deleted).',
  flags: {
    'data-dir': { type: 'string', description: 'data dir of the agent', required: true },
    json: { type: 'boolean', description: 'print the revoked key as one JSON object' },
  },
  positionals: [
    { name: 'ID', description: 'id of the key, as list shows it (the <id> of loom_<id>_<secret>)' },
  ],
};

export const demoSpec: CommandSpec = {
  usage: 'loom demo [--model mlp|cnn] [--agents 4] [--rounds 5] [--partition iid|shards] [--json]',
  summary:
    'Runs a real federation on this machine through the model lifecycle: a coordinator and several edge\n' +
    'agents, each training on its own MNIST partition over mutual TLS; a federated evaluation of the final\n' +
    "version on the sites' hold-out data; promotion through the validation gate; a rollout in two\n" +
    'health-gated waves while predictions flow; then a prediction from one agent over its local inference API.',
  flags: {
    model: {
      type: 'string',
      description: 'mlp (784-200-200-10) or cnn (the FedAvg paper CNN, 1,000 examples per site by default)',
      default: 'mlp',
    },
    agents: { type: 'string', description: 'number of edge agents', default: '4' },
    rounds: { type: 'string', description: 'federated rounds', default: '5' },
    partition: {
      type: 'string',
      description: 'iid (shuffled) or shards (2 digits per site, non-IID)',
      default: 'iid',
    },
    'examples-per-agent': {
      type: 'string',
      description: 'cap on each site’s examples',
      default: 'all of its share',
    },
    'learning-rate': { type: 'string', description: 'local SGD learning rate', default: '0.1' },
    'keep-workspace': {
      type: 'boolean',
      description: 'keep the temp folder (logs, data, stores) at the end',
    },
    json: {
      type: 'boolean',
      description:
        'one JSON line per round, then {evaluation}, {gate}, {rollout}, and last {rounds, finalAccuracy,\n' +
        'modelVersion, predicted, label, servedVersion, evaluation, gate, rollout, totalMs}',
    },
  },
};

// --- store care: check, backup, restore ---------------------------------------------------

export const coordinatorCheckSpec: CommandSpec = {
  usage: 'loom coordinator check --data-dir DIR [--quick] [--accept] [--json]',
  summary:
    "Checks a stopped coordinator's store, as every start does: writes LevelDB dropped while recovering,\n" +
    "commits lost against the durable head, every job's versions and rounds, lineage, weights (decrypted\n" +
    'and hashed unless --quick), the audit chain against its durable head. Exits 1 when it finds a problem.',
  flags: {
    'data-dir': { type: 'string', description: 'folder created by "loom coordinator init"', required: true },
    quick: { type: 'boolean', description: 'do not decrypt and hash every weight blob' },
    accept: {
      type: 'boolean',
      description: 'accept what is found (audited), as start --ignore-store-damage does',
    },
    json: {
      type: 'boolean',
      description: 'print the report as one JSON object {ok, problems, accepted, counts}',
    },
  },
};

export const coordinatorBackupSpec: CommandSpec = {
  usage: 'loom coordinator backup --data-dir DIR --out FILE [--json]',
  summary:
    'Writes a consistent backup of a coordinator — running or stopped — to FILE (mode 0600): every model,\n' +
    'version, job, agent, token and audit entry, its CA and server keys, and its settings. The data key is\n' +
    'not in it: keep the key apart; a restore needs it.',
  flags: {
    'data-dir': { type: 'string', description: 'folder of the coordinator', required: true },
    out: { type: 'string', description: 'backup file to write', required: true },
    json: { type: 'boolean', description: 'print one JSON object {file, bytes, sha256}' },
  },
};

export const coordinatorRestoreSpec: CommandSpec = {
  usage: 'loom coordinator restore --data-dir DIR --from FILE [--json]',
  summary:
    'Restores a backup into DIR, which must hold no coordinator. The file is verified before anything is\n' +
    'written; the restored store is then checked when its data key is available (DIR/data.key, $LOOM_DATA_KEY\n' +
    'or a key command in DIR/coordinator.json).',
  flags: {
    'data-dir': { type: 'string', description: 'empty or new folder to restore into', required: true },
    from: { type: 'string', description: 'backup file made by "loom coordinator backup"', required: true },
    json: { type: 'boolean', description: 'print one JSON object with what was restored and the check' },
  },
};

export const agentCheckSpec: CommandSpec = {
  usage: 'loom agent check --data-dir DIR [--repair] [--json]',
  summary:
    "Checks a stopped agent's model store, as every start does: data LevelDB dropped, writes lost against\n" +
    'the durable head, versions without weights or whose weights no longer decrypt or match their hash.\n' +
    'With --repair, removes what is damaged (the coordinator sends it again). Exits 1 when it finds a problem.',
  flags: {
    'data-dir': { type: 'string', description: 'folder of the agent', required: true },
    repair: { type: 'boolean', description: 'remove damaged versions and re-point models at intact ones' },
    'data-key-file': { type: 'string', description: 'key file of the model store', default: 'DIR/data.key' },
    json: { type: 'boolean', description: 'print one JSON object {ok, problems, removed}' },
  },
};

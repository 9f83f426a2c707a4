// The one list of Loom error codes. Codes are stable: callers branch on them; messages may change.
// Every code is documented here; test/unit/errors.test.ts checks that each has a description.

export const ERROR_CODES = {
  LOOM_ERR_INVALID_ARGUMENT: 'A value given to a command or API call is missing or malformed.',
  LOOM_ERR_INVALID_CONFIG: 'A configuration file, environment variable or flag is invalid or unknown.',
  LOOM_ERR_NOT_FOUND: 'The named model, version, job, agent or token does not exist.',
  LOOM_ERR_CONFLICT: 'The request conflicts with the current state (a name taken, a job already finished).',
  LOOM_ERR_UNAUTHORIZED:
    "No valid bearer token, agent inference API key or client certificate was presented; also the coordinator's refusal of an unknown agent or a superseded certificate.",
  LOOM_ERR_FORBIDDEN: 'The caller is authenticated but its role does not allow the call.',
  LOOM_ERR_INTERNAL: 'An unexpected failure; details are in the server log, not the response.',
  LOOM_ERR_RATE_LIMITED:
    'Too many requests from one address in a short time (unauthenticated routes such as POST /v1/enroll); retry later.',

  LOOM_ERR_PKI: 'A certificate, key or CSR could not be created, parsed or verified.',
  LOOM_ERR_CSR_INVALID: 'A certificate signing request is malformed or its signature does not verify.',
  LOOM_ERR_CERT_REVOKED:
    "The certificate or agent has been revoked; a revoked agent's inference API answers predictions with it (503) unless started with --serve-when-revoked.",
  LOOM_ERR_CA_MISMATCH:
    "The coordinator's CA fingerprint does not match the one pinned in the enrollment token.",
  LOOM_ERR_TOKEN_INVALID: 'An enrollment or API token is malformed, unknown, already used or expired.',

  LOOM_ERR_PROTOCOL: 'A protocol frame is malformed or not valid for its message type.',
  LOOM_ERR_PROTOCOL_VERSION: 'The two sides share no protocol version.',
  LOOM_ERR_FRAME_TOO_LARGE: 'A frame or payload exceeds the configured size limit.',
  LOOM_ERR_TENSOR: 'A tensor has a wrong name, shape, dtype or byte length.',

  LOOM_ERR_UPDATE_REJECTED:
    'A model update failed validation (job, round, shapes, dtype, finite values, norm).',
  LOOM_ERR_ROUND_QUORUM: 'A round could not reach its minimum number of clients before its deadline.',
  LOOM_ERR_AGENT_DISCONNECTED: 'The agent disconnected while it had a task in flight.',
  LOOM_ERR_TASK_FAILED: 'An agent reported that a training or evaluation task failed.',
  LOOM_ERR_JOB_CANCELLED: 'The job was cancelled by an operator.',
  LOOM_ERR_GATE:
    "Promotion to production was refused: the version's latest federated evaluation does not meet the model's promotion policy (each reason names the metric, the value and what it was compared with).",

  LOOM_ERR_MODEL_SPEC: 'A model architecture or TensorFlow.js topology is invalid or unsupported.',
  LOOM_ERR_DATA: 'Local training data is unreadable or does not match the model input shape.',
  LOOM_ERR_INFERENCE_INPUT: 'An inference request has a wrong name, shape, datatype or data length.',
  LOOM_ERR_MODEL_UNAVAILABLE: 'No model version is loaded to serve the request.',
  LOOM_ERR_STORE: 'The local store is unreadable or its contents are inconsistent.',
  LOOM_ERR_STORE_LOCKED:
    'A database is held by another process (a coordinator or agent already running on the same data dir); stop it first.',
  LOOM_ERR_ADDRESS_IN_USE:
    'A port to listen on is already taken by another process; stop that process or choose another port.',
  LOOM_ERR_INTEGRITY: 'A hash or signature over a payload or artifact does not match.',
  LOOM_ERR_DATA_KEY:
    'The data key that encrypts stored weights is missing, unreadable, or not the key the store was encrypted with.',
  LOOM_ERR_STORE_DAMAGED:
    'The store failed its consistency check (lost writes, missing versions, a broken audit chain); see the report.',
  LOOM_ERR_NETWORK: 'A network peer could not be reached or closed the connection.',

  LOOM_ERR_ROLLOUT_ACTIVE:
    'The model already has a rollout in progress (running, paused or rolling back); finish, roll back or wait for it first.',
  LOOM_ERR_ROLLOUT_STATE:
    'The rollout is not in a state that allows the call (pausing a finished rollout, resuming a running one).',
  LOOM_ERR_NO_TARGETS:
    'A rollout, retirement, job or evaluation target (labels) matches no enrolled agent that is not revoked.',
  LOOM_ERR_MODEL_OUTPUT:
    'A model version produced non-finite outputs (NaN or Infinity) for a request; the request failed and counts as a serving error.',
  LOOM_ERR_VERSION_RETIRED:
    'The model version named in an inference call was retired and its grace period has ended (410); the answer names the successor.',
} as const;

export type LoomErrorCode = keyof typeof ERROR_CODES;

// Public door of shared/protocol.

export { deploymentManifest, signDeployment, verifyDeployment } from './artifact-signature.ts';
export { canonicalJson } from './canonical-json.ts';
export type { DecodeOptions, EncodeFramesOptions } from './codec.ts';
export {
  createMessage,
  decodeMessage,
  decodeTensorBytes,
  ENVELOPE_VERSION,
  encodeFrames,
  encodeMessage,
  encodeTensorBytes,
  MAX_EXAMPLES_PER_UPDATE,
} from './codec.ts';
export type { DeploymentManifest } from './deployment-manifest.ts';
export {
  checkAgainstManifest,
  chunkManifest,
  decodeDeploymentManifest,
  deploymentManifestOf,
  encodeDeploymentManifest,
  MANIFEST_KIND,
  MAX_MANIFEST_CHUNKS,
} from './deployment-manifest.ts';
export { FieldReader } from './fields.ts';
export {
  assertLabelKey,
  assertLabelValue,
  LABEL_LIMITS,
  matchesLabels,
  parseLabelPair,
  parseLabels,
} from './labels.ts';
export type {
  ActivateBody,
  CancelBody,
  ChunkBody,
  ChunkManifest,
  DatasetSummary,
  DeployAckBody,
  DeployBody,
  ErrorBody,
  EvaluateBody,
  EvaluateResultBody,
  FeatureStats,
  HelloBody,
  Message,
  MessageBodies,
  MessageOf,
  MessageType,
  ModelRef,
  RenewBody,
  RenewedBody,
  RetirementBody,
  ServingHealthBody,
  TaskErrorBody,
  TrainBody,
  TrainHyperParameters,
  TrainResultBody,
  VersionHealth,
  WelcomeBody,
} from './messages.ts';
export {
  CLOSE_CODES,
  DEFAULT_MAX_FRAME_BYTES,
  HEALTH_LATENCY_BUCKETS_MS,
  HOLDOUT_DEFAULTS,
  holdoutCount,
  MAX_EVALUATION_CLASSES,
  MAX_HEALTH_COUNT,
  MAX_HEALTH_VERSIONS,
  MESSAGE_TYPES,
  PROTOCOL_VERSIONS,
  SUMMARY_LIMITS,
} from './messages.ts';
export type { AssemblerOptions, ChunkedPayload, PartialPayload, PayloadRef } from './payloads.ts';
export {
  chunkPayload,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_MAX_PAYLOAD_BYTES,
  hasChunk,
  PAYLOAD_FIELDS,
  PayloadAssembler,
} from './payloads.ts';
export { REFUSAL_CODE_HEADER } from './upgrade-refusal.ts';

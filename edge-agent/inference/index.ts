// Public door of edge-agent/inference: the local Open Inference Protocol v2 server.
import type { RunningGrpcInferenceServer } from './grpc-server.ts';

export type { InferenceAppOptions, InferenceAuthorizer, ServingRevocation } from './app.ts';
export { AGENT_STATUS_HEADER, createInferenceApp } from './app.ts';
export type { BatchCounts, BatchingOptions } from './batcher.ts';
export { BATCHING_DEFAULTS } from './batcher.ts';

export { GRPC_LOADER_OPTIONS, GRPC_PROTO_PATH } from './grpc-proto.ts';
export type { GrpcInferenceServerOptions, RunningGrpcInferenceServer } from './grpc-server.ts';
export type { ModelServerOptions } from './model-server.ts';
export { MODEL_SERVER_DEFAULTS, ModelServer } from './model-server.ts';
export { RetirementBook, retirementsFile } from './retirements.ts';
export type { InferenceServerOptions, InferenceTlsFiles, RunningInferenceServer } from './serve.ts';
export { startInferenceServer } from './serve.ts';
export { ServingStats } from './serving-stats.ts';
export type { Prediction, ServedModel } from './types.ts';

/**
 * Starts the OIP v2 gRPC API (see grpc-server.ts); the gRPC libraries are loaded on the first
 * call, so an agent that serves no gRPC does not hold them in memory.
 */
export async function startGrpcInferenceServer(
  ...args: Parameters<typeof import('./grpc-server.ts').startGrpcInferenceServer>
): Promise<RunningGrpcInferenceServer> {
  const { startGrpcInferenceServer: start } = await import('./grpc-server.ts');
  return start(...args);
}

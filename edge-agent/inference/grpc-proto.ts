// Where the OIP v2 gRPC definition lives and how it is loaded, apart from the gRPC server so
// that naming it loads no gRPC library.
import { fileURLToPath } from 'node:url';
import type { Options } from '@grpc/proto-loader';

/** The published OIP v2 gRPC definition (grpc_predict_v2.proto), shipped beside this file. */
export const GRPC_PROTO_PATH = fileURLToPath(new URL('./grpc_predict_v2.proto', import.meta.url));

/** How proto-loader maps the messages: field names as in the .proto, int64 as JS numbers. */
export const GRPC_LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

// The gRPC form of the Open Inference Protocol v2 (`inference.GRPCInferenceService`) beside the
// REST API, with @grpc/grpc-js: the same model server, checks and errors (mapped to gRPC status
// codes), plain or over TLS with the REST API's certificate.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { isLoomError, LoomError } from '../../shared/errors/index.ts';
import { createLogger, type Logger } from '../../shared/log/index.ts';
import type { InferenceAppOptions } from './app.ts';
import { GRPC_LOADER_OPTIONS, GRPC_PROTO_PATH } from './grpc-proto.ts';
import { createInferCore } from './infer.ts';
import { modelMetadata } from './metadata.ts';
import type { ModelServer } from './model-server.ts';
import { MAX_BODY_BYTES, parseInferRequest } from './request.ts';
import { outputBytes } from './response.ts';
import { type InferenceTlsFiles, readTlsPair } from './serve.ts';
import {
  AGENT_STATUS_HEADER,
  assertServing,
  findLoaded,
  LOOM_VERSION,
  loadedVersions,
  parseVersion,
} from './serving-rules.ts';

/** Options of `startGrpcInferenceServer`. */
export interface GrpcInferenceServerOptions extends InferenceAppOptions {
  /** Interface to listen on. Default `'127.0.0.1'`. */
  host?: string;
  /** Port to listen on; 0 picks a free port. Required. */
  port: number;
  /** Serve over TLS with these files (those of the REST API). Default: plaintext. */
  tls?: InferenceTlsFiles;
}

/** A listening gRPC inference server. */
export interface RunningGrpcInferenceServer {
  port: number;
  /** `host:port`, as gRPC clients take it. */
  address: string;
  close(): Promise<void>;
}

type Tensor = {
  name: string;
  datatype: string;
  shape: number[];
  parameters: Record<string, unknown>;
  contents: Record<string, unknown[]> | null;
};

interface InferMessage {
  model_name: string;
  model_version: string;
  id: string;
  inputs: Tensor[];
  outputs: { name: string }[];
  raw_input_contents: Buffer[];
}

/** The typed contents field that carries each input datatype. */
const CONTENTS_FIELD: Record<string, string> = {
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
};

/** The gRPC status for a Loom error, from the HTTP status the REST API gives it. */
function grpcStatus(httpStatus: number): grpc.status {
  switch (httpStatus) {
    case 400:
      return grpc.status.INVALID_ARGUMENT;
    case 401:
      return grpc.status.UNAUTHENTICATED;
    case 403:
      return grpc.status.PERMISSION_DENIED;
    case 404:
    case 410:
      return grpc.status.NOT_FOUND;
    case 413:
      return grpc.status.RESOURCE_EXHAUSTED;
    case 503:
      return grpc.status.UNAVAILABLE;
    default:
      return grpc.status.INTERNAL;
  }
}

/**
 * The request as the REST API's JSON body would carry it, so the same checks (and messages)
 * apply; raw_input_contents become the binary part with their sizes declared.
 */
function toRestBody(m: InferMessage): { body: Record<string, unknown>; binary?: Uint8Array } {
  const raw = m.raw_input_contents;
  if (raw.length > 0 && raw.length !== m.inputs.length) {
    throw new LoomError(
      'LOOM_ERR_INFERENCE_INPUT',
      `raw_input_contents has ${raw.length} entries for ${m.inputs.length} inputs; send one per input`,
    );
  }
  const inputs = m.inputs.map((t, i) => {
    const field = CONTENTS_FIELD[t.datatype];
    const typed = field ? t.contents?.[field] : undefined;
    const base = { name: t.name, datatype: t.datatype, shape: t.shape };
    if (raw.length === 0) return { ...base, data: typed ?? [] };
    if (typed && typed.length > 0) {
      throw new LoomError(
        'LOOM_ERR_INFERENCE_INPUT',
        `input "${t.name}" has both contents and raw_input_contents`,
      );
    }
    return { ...base, parameters: { binary_data_size: raw[i].byteLength } };
  });
  const body = {
    ...(m.id ? { id: m.id } : {}),
    inputs,
    ...(m.outputs.length > 0 ? { outputs: m.outputs.map((o) => ({ name: o.name })) } : {}),
  };
  return raw.length > 0 ? { body, binary: raw[0] } : { body };
}

/**
 * The service implementation over `server`. ServerLive and ServerReady are open like the REST
 * health probes; every other call passes `authorize` with the `authorization` metadata. Answers
 * of a revoked agent carry `loom-agent-status: revoked`; retirement headers travel as metadata.
 */
export function createGrpcInferenceService(
  server: ModelServer,
  opts: InferenceAppOptions,
  log: Logger,
): grpc.UntypedServiceImplementation {
  const revocation = opts.revocation ?? (() => undefined);
  const serveWhenRevoked = opts.serveWhenRevoked ?? false;
  const core = createInferCore(server, {
    revocation,
    serveWhenRevoked,
    ...(opts.stats ? { stats: opts.stats } : {}),
    ...(opts.retirements ? { retirements: opts.retirements } : {}),
  });

  /** Wraps a handler: metadata, authorization, and errors turned into gRPC statuses. */
  const unary =
    <Req, Res>(open: boolean, fn: (req: Req, md: grpc.Metadata) => Res | Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>): void => {
      const md = new grpc.Metadata();
      if (revocation()) md.set(AGENT_STATUS_HEADER.toLowerCase(), 'revoked');
      Promise.resolve()
        .then(() => {
          if (!open && opts.authorize) {
            const auth = call.metadata.get('authorization')[0];
            opts.authorize(typeof auth === 'string' ? auth : undefined);
          }
          return fn(call.request, md);
        })
        .then(
          (res) => {
            call.sendMetadata(md);
            callback(null, res);
          },
          (err: unknown) => {
            md.set('loom-error-code', isLoomError(err) ? err.code : 'LOOM_ERR_INTERNAL');
            if (!isLoomError(err)) {
              log.error('gRPC inference call failed', {
                call: call.getPath(),
                error: (err as Error)?.stack ?? String(err),
              });
            }
            callback({
              code: isLoomError(err)
                ? grpcStatus(err.code === 'LOOM_ERR_CERT_REVOKED' ? 503 : err.httpStatus)
                : grpc.status.INTERNAL,
              details: isLoomError(err) ? err.message : 'internal error',
              metadata: md,
            });
          },
        );
    };

  const versionOf = (name: string, text: string): number | undefined =>
    text === '' ? undefined : parseVersion(name, text);

  return {
    ServerLive: unary(true, () => ({ live: true })),
    ServerReady: unary(true, () => ({
      ready: !(revocation() && !serveWhenRevoked) && server.list().length > 0,
    })),
    ModelReady: unary(false, (req: { name: string; version: string }) => {
      assertServing(revocation() !== undefined, serveWhenRevoked);
      // Ready means loaded now; asking must not load a version.
      findLoaded(server, req.name, versionOf(req.name, req.version));
      return { ready: true };
    }),
    ServerMetadata: unary(false, () => ({
      name: 'loom-edge',
      version: LOOM_VERSION,
      extensions: ['binary_tensor_data'],
    })),
    ModelMetadata: unary(false, async (req: { name: string; version: string }) => {
      const version = versionOf(req.name, req.version);
      const served =
        version === undefined ? findLoaded(server, req.name) : await server.find(req.name, version);
      return modelMetadata(served, loadedVersions(server, req.name));
    }),
    ModelInfer: unary(false, async (m: InferMessage, md) => {
      const name = m.model_name;
      const { req, result, classes } = await core({
        name,
        version: versionOf(name, m.model_version),
        setHeader: (k, v) => md.set(k.toLowerCase(), v),
        parse: (inputShape) => {
          const { body, binary } = toRestBody(m);
          return parseInferRequest(body, inputShape, binary);
        },
      });
      // Outputs travel as raw_output_contents, as Triton answers.
      return {
        model_name: name,
        model_version: String(result.version),
        id: req.id ?? '',
        outputs: req.outputs.map((out) =>
          out === 'probabilities'
            ? { name: out, datatype: 'FP32', shape: [req.batch, classes] }
            : { name: out, datatype: 'INT64', shape: [req.batch, 1] },
        ),
        raw_output_contents: req.outputs.map((out) => outputBytes(out, result)),
      };
    }),
  };
}

/** The `inference.GRPCInferenceService` definition loaded from the shipped .proto. */
export function grpcServiceDefinition(): grpc.ServiceDefinition {
  const pkg = grpc.loadPackageDefinition(
    protoLoader.loadSync(GRPC_PROTO_PATH, GRPC_LOADER_OPTIONS),
  ) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  return pkg.inference.GRPCInferenceService.service;
}

/**
 * Starts the OIP v2 gRPC API for `server` on `opts.port`, over TLS when `opts.tls` names a
 * certificate and key (read at start). Messages are limited to the REST API's 16 MiB body limit
 * (RESOURCE_EXHAUSTED past it). Throws LOOM_ERR_INVALID_CONFIG when the port or files cannot be used.
 * @param opts.host default '127.0.0.1'
 */
export async function startGrpcInferenceServer(
  server: ModelServer,
  opts: GrpcInferenceServerOptions,
): Promise<RunningGrpcInferenceServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) {
    throw new LoomError('LOOM_ERR_INVALID_CONFIG', `gRPC inference port ${port} is not a valid port`);
  }
  const log = opts.log ?? createLogger({ component: 'inference' });
  const pair = opts.tls ? await readTlsPair(opts.tls) : undefined;
  const credentials = pair
    ? grpc.ServerCredentials.createSsl(
        null,
        [{ cert_chain: Buffer.from(pair.cert), private_key: Buffer.from(pair.key) }],
        false,
      )
    : grpc.ServerCredentials.createInsecure();
  const grpcServer = new grpc.Server({
    'grpc.max_receive_message_length': MAX_BODY_BYTES,
    'grpc.max_send_message_length': -1,
  });
  grpcServer.addService(grpcServiceDefinition(), createGrpcInferenceService(server, opts, log));
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const actual = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`${urlHost}:${port}`, credentials, (err, bound) =>
      err
        ? reject(
            new LoomError(
              'LOOM_ERR_INVALID_CONFIG',
              `gRPC inference server cannot listen on ${host}:${port}: ${err.message}`,
              {
                cause: err,
              },
            ),
          )
        : resolve(bound),
    ),
  );
  let closed: Promise<void> | undefined;
  return {
    port: actual,
    address: `${urlHost}:${actual}`,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        // Calls in flight get a moment to finish; then the rest are cut.
        const timer = setTimeout(() => grpcServer.forceShutdown(), 5_000);
        timer.unref();
        grpcServer.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closed;
    },
  };
}

// The signed manifest of a deployment, version 2: what the coordinator deploys (model, version,
// architecture), the SHA-256 of the whole weights and of every chunk they are cut into, and the
// chunk size. The coordinator signs its canonical JSON; an agent checks the signature first, then
// every chunk of the weights it holds (received now or kept from a cut transfer) against the
// signed list, before it decodes, stores or serves anything.
import { createHash } from 'node:crypto';
import { LoomError } from '../errors/index.ts';
import { canonicalJson } from './canonical-json.ts';
import { FieldReader } from './fields.ts';
import type { ChunkManifest, ModelRef } from './messages.ts';

export const MANIFEST_KIND = 'loom-deployment-v2';

/** Most chunks a manifest may list (the chunk frames of a payload are bounded the same way). */
export const MAX_MANIFEST_CHUNKS = 1 << 20;

/** Everything a v2 deployment signature covers. */
export interface DeploymentManifest extends ChunkManifest {
  kind: typeof MANIFEST_KIND;
  name: string;
  version: number;
  architecture: ModelRef['architecture'];
  weightsSha256: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The chunk part of a manifest for `weights` cut into chunks of `chunkBytes`. */
export function chunkManifest(weights: Uint8Array, chunkBytes: number): ChunkManifest {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1)
    throw new TypeError('chunkBytes must be a positive integer');
  const count = Math.max(1, Math.ceil(weights.byteLength / chunkBytes));
  const chunks: string[] = [];
  for (let i = 0; i < count; i++) {
    chunks.push(
      sha256Hex(weights.subarray(i * chunkBytes, Math.min(weights.byteLength, (i + 1) * chunkBytes))),
    );
  }
  return { size: weights.byteLength, chunkBytes, chunks };
}

/** The manifest a deploy or activate of `model` with these hashes stands for. */
export function deploymentManifestOf(
  model: ModelRef,
  weightsSha256: string,
  chunks: ChunkManifest,
): DeploymentManifest {
  return {
    kind: MANIFEST_KIND,
    name: model.name,
    version: model.version,
    architecture: model.architecture,
    weightsSha256,
    size: chunks.size,
    chunkBytes: chunks.chunkBytes,
    chunks: [...chunks.chunks],
  };
}

/** The exact bytes that are signed. Reverse of `decodeDeploymentManifest`. */
export function encodeDeploymentManifest(m: DeploymentManifest): Buffer {
  return Buffer.from(canonicalJson({ ...m }));
}

/** Bytes of a manifest → the manifest; LOOM_ERR_INTEGRITY for anything that is not one. */
export function decodeDeploymentManifest(bytes: Uint8Array): DeploymentManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new LoomError('LOOM_ERR_INTEGRITY', 'deployment manifest is not JSON', { cause: err });
  }
  const r = FieldReader.of(raw, 'manifest', 'LOOM_ERR_INTEGRITY').onlyKeys([
    'kind',
    'name',
    'version',
    'architecture',
    'weightsSha256',
    'size',
    'chunkBytes',
    'chunks',
  ]);
  if (r.raw('kind') !== MANIFEST_KIND) r.fail('kind', `must be ${MANIFEST_KIND}`);
  const chunks = readChunkManifest(r);
  return deploymentManifestOf(
    {
      name: r.string('name', { max: 128 }),
      version: r.integer('version', { min: 1 }),
      architecture: r.raw('architecture') as ModelRef['architecture'],
    },
    r.string('weightsSha256', { pattern: SHA256_HEX }),
    chunks,
  );
}

/** The chunk fields of a manifest as a reader holds them (wire or signed bytes), bounded and consistent. */
export function readChunkManifest(r: FieldReader): ChunkManifest {
  const size = r.integer('size', { min: 0 });
  const chunkBytes = r.integer('chunkBytes', { min: 1, max: 1 << 30 });
  const list = r.stringArray('chunks', { max: MAX_MANIFEST_CHUNKS });
  for (const h of list) if (!SHA256_HEX.test(h)) r.fail('chunks', 'must hold SHA-256 hex digests');
  if (list.length !== Math.max(1, Math.ceil(size / chunkBytes))) {
    r.fail('chunks', `must list one hash per chunk of ${chunkBytes} bytes of ${size}`);
  }
  return { size, chunkBytes, chunks: list };
}

/**
 * Throws LOOM_ERR_INTEGRITY, naming the first chunk that differs, unless `weights` are exactly what
 * the manifest lists: its size, each chunk's SHA-256 in order, then the whole.
 */
export function checkAgainstManifest(m: DeploymentManifest, weights: Uint8Array): void {
  if (weights.byteLength !== m.size) {
    throw new LoomError(
      'LOOM_ERR_INTEGRITY',
      `weights of ${m.name}@${m.version} have ${weights.byteLength} bytes; the signed manifest says ${m.size}`,
    );
  }
  for (let i = 0; i < m.chunks.length; i++) {
    const part = weights.subarray(i * m.chunkBytes, Math.min(m.size, (i + 1) * m.chunkBytes));
    if (sha256Hex(part) !== m.chunks[i]) {
      throw new LoomError(
        'LOOM_ERR_INTEGRITY',
        `chunk ${i} of ${m.name}@${m.version} does not match the SHA-256 the signed manifest lists for it`,
        { details: { chunk: i } },
      );
    }
  }
  if (sha256Hex(weights) !== m.weightsSha256) {
    throw new LoomError(
      'LOOM_ERR_INTEGRITY',
      `weights of ${m.name}@${m.version} do not match their signed SHA-256`,
    );
  }
}

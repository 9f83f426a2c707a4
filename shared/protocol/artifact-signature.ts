// Signed model artifacts: the coordinator signs what it deploys with its server key, as a v2
// manifest (model, version, architecture, the weights' hash and every chunk's; see
// deployment-manifest.ts) or, from older coordinators, a v1 one (no chunk hashes); an agent checks
// the signer chains to its pinned CA and is a server certificate before it stores or serves the weights.
import { sign, verify, X509Certificate } from 'node:crypto';
import { LoomError } from '../errors/index.ts';
import { canonicalJson } from './canonical-json.ts';
import {
  type DeploymentManifest,
  deploymentManifestOf,
  encodeDeploymentManifest,
} from './deployment-manifest.ts';
import type { ChunkManifest, ModelRef } from './messages.ts';

const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1';

/** The exact bytes that are signed for a deployment. */
export function deploymentManifest(model: ModelRef, weightsSha256: string): Buffer {
  return Buffer.from(
    canonicalJson({
      kind: 'loom-deployment-v1',
      name: model.name,
      version: model.version,
      architecture: model.architecture,
      weightsSha256,
    }),
  );
}

/** The signed bytes: the v2 manifest when `chunks` are given, else the v1 one. */
function signedBytes(model: ModelRef, weightsSha256: string, chunks?: ChunkManifest): Buffer {
  return chunks
    ? encodeDeploymentManifest(deploymentManifestOf(model, weightsSha256, chunks))
    : deploymentManifest(model, weightsSha256);
}

/**
 * RSA/ECDSA-SHA256 signature of the manifest with the coordinator's server key: the v2 manifest
 * (every chunk's hash too) when `chunks` are given, the v1 one otherwise.
 */
export function signDeployment(
  model: ModelRef,
  weightsSha256: string,
  serverKeyPem: string,
  chunks?: ChunkManifest,
): Buffer {
  return sign('sha256', signedBytes(model, weightsSha256, chunks), serverKeyPem);
}

/**
 * Throws LOOM_ERR_INTEGRITY unless `signerCertPem` was issued by the pinned CA, is valid now,
 * is a server certificate (not another agent's), and signed exactly this manifest (v2 with
 * `chunks`, which it then returns, to check the weights against).
 */
export function verifyDeployment(
  model: ModelRef,
  weightsSha256: string,
  signature: Uint8Array,
  signerCertPem: string,
  caCertPem: string,
  now = new Date(),
  chunks?: ChunkManifest,
): DeploymentManifest | undefined {
  let signer: X509Certificate;
  let ca: X509Certificate;
  try {
    signer = new X509Certificate(signerCertPem);
    ca = new X509Certificate(caCertPem);
  } catch (err) {
    throw new LoomError('LOOM_ERR_INTEGRITY', 'deployment signer certificate is unreadable', { cause: err });
  }
  if (!signer.checkIssued(ca) || !signer.verify(ca.publicKey)) {
    throw new LoomError(
      'LOOM_ERR_INTEGRITY',
      'deployment was not signed by a certificate of the pinned Loom CA',
    );
  }
  if (now < new Date(signer.validFrom) || now > new Date(signer.validTo)) {
    throw new LoomError('LOOM_ERR_INTEGRITY', 'deployment signer certificate is not valid now');
  }
  if (!(signer.keyUsage ?? []).includes(SERVER_AUTH_OID)) {
    throw new LoomError(
      'LOOM_ERR_INTEGRITY',
      'deployment signer is not the coordinator (no serverAuth usage)',
    );
  }
  if (!verify('sha256', signedBytes(model, weightsSha256, chunks), signer.publicKey, signature)) {
    throw new LoomError(
      'LOOM_ERR_INTEGRITY',
      `signature over ${model.name}@${model.version} does not verify`,
    );
  }
  return chunks ? deploymentManifestOf(model, weightsSha256, chunks) : undefined;
}

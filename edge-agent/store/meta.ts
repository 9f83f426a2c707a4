// Parses stored metadata back, so a damaged record is a clear LOOM_ERR_STORE and not a crash.
import { LoomError } from '../../shared/errors/index.ts';
import type { ModelArchitecture } from '../../shared/models/index.ts';
import type { StoredVersion } from './types.ts';

/** Parses one metadata record read from the store; `key` names it in the error. */
export function parseMeta(text: string, key: string): StoredVersion {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new LoomError('LOOM_ERR_STORE', `model store record ${key} is not valid JSON`, { cause: err });
  }
  if (
    v === null ||
    typeof v !== 'object' ||
    typeof v.name !== 'string' ||
    !Number.isSafeInteger(v.version) ||
    typeof v.sha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(v.sha256) ||
    typeof v.receivedAt !== 'string' ||
    v.architecture === null ||
    typeof v.architecture !== 'object'
  ) {
    throw new LoomError('LOOM_ERR_STORE', `model store record ${key} is malformed`);
  }
  return {
    name: v.name,
    version: v.version as number,
    architecture: v.architecture as ModelArchitecture,
    sha256: v.sha256,
    receivedAt: v.receivedAt,
  };
}

// Key pairs and CSRs of the fleet bench's emulated agents, cached on disk: a 2048-bit RSA key
// takes a quarter of a second or more to make, so 10,000 of them would take most of an hour at
// every run. Agent i always gets the key of slot i; only the certificates (from a fresh CA at
// every run) are new. The CSR's requested name is replaced by the coordinator, so a cached CSR
// fits any coordinator.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKeyAndCsr } from '../certs/index.ts';

/** Git-ignored (the `.loom-*` folders); delete it to make new keys. */
export const IDENTITY_CACHE_DIR = fileURLToPath(
  new URL('../.loom-bench-cache/fleet-identities/', import.meta.url),
);

/** Identities per cache file. */
export const CHUNK_SIZE = 250;

export interface CachedIdentity {
  keyPem: string;
  csrPem: string;
}

/** JSON inside, but not named .json: the repository's formatter would check the cache otherwise. */
function chunkPath(chunk: number): string {
  return join(IDENTITY_CACHE_DIR, `chunk-${String(chunk).padStart(5, '0')}.keys`);
}

async function readChunk(chunk: number): Promise<CachedIdentity[] | undefined> {
  try {
    const list = JSON.parse(await readFile(chunkPath(chunk), 'utf8')) as CachedIdentity[];
    return Array.isArray(list) && list.length === CHUNK_SIZE ? list : undefined;
  } catch {
    return undefined;
  }
}

/** The chunks agents [0, agents) need that the cache does not hold yet. */
export async function missingChunks(agents: number): Promise<number[]> {
  const missing: number[] = [];
  for (let c = 0; c < Math.ceil(agents / CHUNK_SIZE); c++) {
    if (!(await readChunk(c))) missing.push(c);
  }
  return missing;
}

/**
 * Makes one chunk's CHUNK_SIZE keys and CSRs with `certs/` (synchronous: run it in a worker
 * process) and writes it atomically, so a run stopped half-way leaves no partial file.
 */
export async function generateChunk(chunk: number): Promise<void> {
  const list: CachedIdentity[] = [];
  for (let i = 0; i < CHUNK_SIZE; i++) {
    list.push(createKeyAndCsr({ commonName: `fleet-${chunk * CHUNK_SIZE + i}` }));
    // Lets IPC and timers through between keys.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await mkdir(IDENTITY_CACHE_DIR, { recursive: true, mode: 0o700 });
  const tmp = `${chunkPath(chunk)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(list), { mode: 0o600 });
  await rename(tmp, chunkPath(chunk));
}

/** Identities of agents [from, from + count); every chunk they fall in must exist. */
export async function loadIdentities(from: number, count: number): Promise<CachedIdentity[]> {
  const out: CachedIdentity[] = [];
  const chunks = new Map<number, CachedIdentity[]>();
  for (let i = from; i < from + count; i++) {
    const c = Math.floor(i / CHUNK_SIZE);
    let list = chunks.get(c);
    if (!list) {
      list = await readChunk(c);
      if (!list) throw new Error(`identity cache chunk ${c} is missing from ${IDENTITY_CACHE_DIR}`);
      chunks.set(c, list);
    }
    out.push(list[i % CHUNK_SIZE]);
  }
  return out;
}

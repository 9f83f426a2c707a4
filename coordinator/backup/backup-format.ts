// The backup file: a gzip stream of a JSON header line, then length-prefixed records (database
// entries byte for byte, and the coordinator's own files), then a SHA-256 over everything before
// it. Written and read as streams, so a large registry never has to fit in memory.
import { createHash, type Hash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { LoomError } from '../../shared/errors/index.ts';

/** What the first line of a backup says about it. */
export interface BackupHeader {
  format: 'loom-coordinator-backup';
  version: 1;
  createdAt: string;
  /** Newest commit the backup holds. */
  commitSeq: number;
  /** Id of the data key the weights in it are encrypted with (the key itself is never in a backup). */
  dataKeyId: string | null;
}

/** One record of a backup. */
export type BackupRecord =
  | { kind: 'entry'; key: Buffer; value: Buffer }
  | { kind: 'file'; path: string; content: Buffer; mode: number };

const KIND = { entry: 1, file: 2, end: 0xff } as const;
const MAX_FIELD_BYTES = 2 ** 31 - 1;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** Writes a backup to `out`: header, records as they come, and the checksum at the end. */
export class BackupWriter {
  private readonly gzip = createGzip();
  private readonly hash: Hash = createHash('sha256');
  private readonly done: Promise<void>;
  bytes = 0;
  records = 0;

  constructor(out: Writable, header: BackupHeader) {
    this.done = new Promise<void>((resolve, reject) => {
      out.once('finish', resolve);
      out.once('close', resolve);
      out.once('error', reject);
      this.gzip.once('error', reject);
    });
    this.gzip.pipe(out);
    this.put(Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'));
  }

  private put(chunk: Buffer): Promise<void> | undefined {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.gzip.write(chunk)) return undefined;
    return new Promise<void>((resolve) => this.gzip.once('drain', resolve));
  }

  /** Adds one record; resolves when the stream can take more. */
  async add(record: BackupRecord): Promise<void> {
    this.records++;
    if (record.kind === 'entry') {
      await this.put(
        Buffer.concat([
          Buffer.from([KIND.entry]),
          u32(record.key.length),
          record.key,
          u32(record.value.length),
        ]),
      );
      await this.put(record.value);
    } else {
      const path = Buffer.from(record.path, 'utf8');
      await this.put(
        Buffer.concat([
          Buffer.from([KIND.file]),
          u32(path.length),
          path,
          u32(record.mode),
          u32(record.content.length),
        ]),
      );
      await this.put(record.content);
    }
  }

  /** Writes the checksum and closes the stream; resolves with the checksum once it is flushed. */
  async finish(): Promise<string> {
    const end = Buffer.from([KIND.end]);
    this.hash.update(end);
    this.gzip.write(end);
    const digest = this.hash.digest();
    this.gzip.end(digest);
    await this.done;
    return digest.toString('hex');
  }
}

function damaged(message: string): LoomError {
  return new LoomError('LOOM_ERR_INTEGRITY', `the backup is damaged or not a Loom backup: ${message}`);
}

/** Reads exact byte counts out of a stream of chunks. */
class ByteReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private ended = false;
  private readonly iterator: AsyncIterator<Buffer>;
  constructor(source: Readable) {
    this.iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }
  /** Exactly `n` bytes, or undefined at a clean end of stream before any of them. */
  async take(n: number): Promise<Buffer | undefined> {
    while (this.have < n && !this.ended) {
      const next = await this.iterator.next();
      if (next.done) this.ended = true;
      else {
        this.chunks.push(next.value);
        this.have += next.value.length;
      }
    }
    if (this.have === 0 && this.ended) return undefined;
    if (this.have < n) throw damaged('it ends in the middle of a record');
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.have = rest.length;
    return out;
  }
  async line(limit: number): Promise<string> {
    const parts: Buffer[] = [];
    for (let size = 0; size < limit; size++) {
      const b = await this.take(1);
      if (b === undefined) throw damaged('it has no header');
      if (b[0] === 0x0a) return Buffer.concat(parts).toString('utf8');
      parts.push(Buffer.from(b));
    }
    throw damaged('its header is too long');
  }
}

/**
 * Reads a backup from `input` (the gzip file stream): its header, then every record through
 * `onRecord`, then checks the trailing SHA-256. LOOM_ERR_INTEGRITY when the file is damaged; the
 * caller must treat records as untrusted until this resolves (restore verifies in a first pass).
 */
export async function readBackup(
  input: Readable,
  onRecord: (record: BackupRecord) => Promise<void> | void,
): Promise<{ header: BackupHeader; sha256: string; records: number }> {
  const gunzip = createGunzip();
  const source = input.pipe(gunzip);
  input.once('error', (err) => gunzip.destroy(err));
  const hash = createHash('sha256');
  const reader = new ByteReader(source);
  const read = async (n: number): Promise<Buffer> => {
    const b = await reader.take(n);
    if (b === undefined) throw damaged('it ends before its checksum');
    hash.update(b);
    return b;
  };
  const field = async (): Promise<Buffer> => {
    const len = (await read(4)).readUInt32BE(0);
    if (len > MAX_FIELD_BYTES) throw damaged('a record is too large');
    return Buffer.from(await read(len));
  };
  let header: BackupHeader;
  try {
    const text = await reader.line(64 * 1024);
    hash.update(`${text}\n`);
    header = JSON.parse(text) as BackupHeader;
  } catch (err) {
    if (err instanceof LoomError) throw err;
    throw damaged('its header is not readable');
  }
  if (header?.format !== 'loom-coordinator-backup' || header.version !== 1) {
    throw damaged('its header does not name a Loom coordinator backup of version 1');
  }
  let records = 0;
  try {
    for (;;) {
      const [kind] = await read(1);
      if (kind === KIND.end) break;
      if (kind === KIND.entry) {
        const key = await field();
        await onRecord({ kind: 'entry', key, value: await field() });
      } else if (kind === KIND.file) {
        const path = (await field()).toString('utf8');
        const mode = (await read(4)).readUInt32BE(0);
        await onRecord({ kind: 'file', path, mode, content: await field() });
      } else {
        throw damaged(`record ${records + 1} has an unknown kind`);
      }
      records++;
    }
    const expected = hash.digest();
    const stored = await reader.take(32);
    if (!stored?.equals(expected)) throw damaged('its checksum does not match its contents');
    if ((await reader.take(1)) !== undefined) throw damaged('it has bytes after its checksum');
    return { header, sha256: expected.toString('hex'), records };
  } catch (err) {
    if (err instanceof LoomError) throw err;
    throw damaged((err as Error).message);
  }
}

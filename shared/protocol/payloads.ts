// Large payloads in bounded frames: a `train`, `train-result` or `deploy` whose weights are larger
// than the chunk size travels as `chunk` frames (each with its own SHA-256, all naming the whole
// payload's SHA-256), then the message itself with a reference in place of the bytes. The sender
// cuts and hashes a payload once, whoever it goes to; the receiver assembles within set bounds.
import { createHash } from 'node:crypto';
import { LoomError } from '../errors/index.ts';
import type { ChunkBody, MessageType } from './messages.ts';

/** The binary field of each message type that may be sent by reference. */
export const PAYLOAD_FIELDS: Partial<Record<MessageType, 'weights' | 'update'>> = {
  train: 'weights',
  'train-result': 'update',
  evaluate: 'weights',
  deploy: 'weights',
};

/** Default largest chunk: 8 MiB, well inside the 64 MiB frame limit. */
export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;
/** Default largest assembled payload: 1 GiB (about 268 million float32 parameters). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024;

/** What stands in a message for bytes sent as chunks before it. */
export interface PayloadRef {
  /** SHA-256 (hex) of the whole payload. */
  ref: string;
  size: number;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A payload cut into chunk bodies, with its reference. */
export interface ChunkedPayload {
  ref: PayloadRef;
  chunks: ChunkBody[];
}

/** Cuts `bytes` into chunks of at most `chunkBytes`, hashing each and the whole. */
export function chunkPayload(bytes: Uint8Array, chunkBytes: number): ChunkedPayload {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1)
    throw new TypeError('chunkBytes must be a positive integer');
  const payload = sha256Hex(bytes);
  const count = Math.max(1, Math.ceil(bytes.byteLength / chunkBytes));
  const chunks: ChunkBody[] = [];
  for (let index = 0; index < count; index++) {
    const part = bytes.subarray(index * chunkBytes, Math.min(bytes.byteLength, (index + 1) * chunkBytes));
    chunks.push({ payload, index, count, size: bytes.byteLength, sha256: sha256Hex(part), bytes: part });
  }
  return { ref: { ref: payload, size: bytes.byteLength }, chunks };
}

/** Limits of a `PayloadAssembler`. */
export interface AssemblerOptions {
  /**
   * Largest payload accepted, in bytes, asked each time a payload starts (so it can follow what
   * the receiver expects now: the size of the model in a task in flight, say). Default: 1 GiB.
   */
  maxPayloadBytes?: () => number;
  /** Payloads being assembled or waiting to be referenced at once. Default 2. */
  maxPending?: number;
  /**
   * How a receiver that trusts its sender (an agent, of its coordinator) keeps partial payloads
   * across connections: a new payload past `maxPending` drops the oldest partial one instead of
   * being refused, a partial payload whose sender now cuts it otherwise (another chunk size)
   * starts over, and a chunk received again with the same hash is ignored. Default false.
   */
  resumable?: boolean;
}

/** What a receiver holds of a payload it has not received whole (so a sender can send the rest). */
export interface PartialPayload {
  /** SHA-256 (hex) of the whole payload. */
  payload: string;
  count: number;
  /** Bitmap of the chunks held: bit i (byte i >> 3, bit i & 7) is chunk i. */
  have: Uint8Array;
}

/** Whether bit `index` of a `PartialPayload.have` bitmap is set. */
export function hasChunk(have: Uint8Array, index: number): boolean {
  return ((have[index >> 3] ?? 0) & (1 << (index & 7))) !== 0;
}

interface Pending {
  count: number;
  size: number;
  /** Bytes and chunks received so far. */
  received: number;
  chunks: number;
  parts: (Uint8Array | undefined)[];
}

function violation(message: string): LoomError {
  return new LoomError('LOOM_ERR_PROTOCOL', message);
}

/**
 * Assembles the chunked payloads of one connection. Every chunk is checked against its own hash
 * and the limits as it arrives, the whole against the payload's hash when the last one does; a
 * finished payload waits until a message names it (once). Memory is bounded by the limits:
 * at most `maxPending` payloads, each no larger than `maxPayloadBytes()`.
 */
export class PayloadAssembler {
  private readonly pending = new Map<string, Pending>();
  private readonly done = new Map<string, Uint8Array>();
  private readonly maxPayloadBytes: () => number;
  private readonly maxPending: number;
  private readonly resumable: boolean;

  constructor(options: AssemblerOptions = {}) {
    this.maxPayloadBytes = options.maxPayloadBytes ?? (() => DEFAULT_MAX_PAYLOAD_BYTES);
    this.maxPending = options.maxPending ?? 2;
    this.resumable = options.resumable ?? false;
  }

  /** The payloads being assembled, with the chunks held of each, oldest first. */
  partials(): PartialPayload[] {
    return [...this.pending.entries()].map(([payload, p]) => {
      // A Buffer, so msgpack carries it as binary wherever it sits in a message.
      const have = Buffer.alloc(Math.ceil(p.count / 8));
      p.parts.forEach((part, i) => {
        if (part !== undefined) have[i >> 3] |= 1 << (i & 7);
      });
      return { payload, count: p.count, have };
    });
  }

  /** Bytes held now, in payloads being assembled or waiting. */
  get heldBytes(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.received;
    for (const b of this.done.values()) n += b.byteLength;
    return n;
  }

  /** Takes one chunk; throws LOOM_ERR_PROTOCOL (the connection should end) on any violation. */
  accept(chunk: ChunkBody): void {
    const { payload, index, count, size, bytes } = chunk;
    if (this.done.has(payload)) return; // a payload sent twice: the first copy stands
    let p = this.pending.get(payload);
    if (p && this.resumable && (count !== p.count || size !== p.size)) {
      this.pending.delete(payload);
      p = undefined;
    }
    if (!p) {
      const max = this.maxPayloadBytes();
      if (size > max)
        throw violation(`payload of ${size} bytes is larger than the ${max} this side accepts now`);
      if (this.resumable && this.pending.size > 0 && this.pending.size + this.done.size >= this.maxPending) {
        this.pending.delete(this.pending.keys().next().value!);
      }
      if (this.pending.size + this.done.size >= this.maxPending) {
        throw violation(`more than ${this.maxPending} payloads at once`);
      }
      p = {
        count,
        size,
        received: 0,
        chunks: 0,
        parts: new Array<Uint8Array | undefined>(count).fill(undefined),
      };
      this.pending.set(payload, p);
    }
    if (count !== p.count || size !== p.size)
      throw violation(`chunk ${index} of payload ${payload} disagrees on its count or size`);
    if (index >= count) throw violation(`chunk ${index} of a payload of ${count} chunks`);
    if (p.parts[index] !== undefined) {
      if (this.resumable && sha256Hex(p.parts[index]) === chunk.sha256 && sha256Hex(bytes) === chunk.sha256)
        return;
      throw violation(`chunk ${index} of payload ${payload} came twice`);
    }
    if (p.received + bytes.byteLength > size)
      throw violation(`payload ${payload} has more bytes than its size ${size}`);
    if (sha256Hex(bytes) !== chunk.sha256)
      throw violation(`chunk ${index} of payload ${payload} does not match its SHA-256`);
    // Copied: the frame's buffer may be a view into something larger that would stay alive.
    p.parts[index] = Uint8Array.from(bytes);
    p.received += bytes.byteLength;
    p.chunks++;
    if (p.chunks < p.count) return;
    this.pending.delete(payload);
    if (p.received !== size)
      throw violation(`payload ${payload} ended with ${p.received} of its ${size} bytes`);
    const whole = Buffer.concat(p.parts as Uint8Array[], size);
    if (sha256Hex(whole) !== payload) throw violation(`payload ${payload} does not match its SHA-256`);
    this.done.set(payload, whole);
  }

  /** The finished payload `ref` names, once; LOOM_ERR_PROTOCOL when it was not (fully) received. */
  take(ref: PayloadRef): Uint8Array {
    const bytes = this.done.get(ref.ref);
    if (!bytes) throw violation(`the message refers to payload ${ref.ref}, which was not received whole`);
    if (bytes.byteLength !== ref.size)
      throw violation(`payload ${ref.ref} has ${bytes.byteLength} bytes, the message says ${ref.size}`);
    this.done.delete(ref.ref);
    return bytes;
  }

  /** Drops the finished payloads no message has named (what a closed connection's messages would have). */
  clearDone(): void {
    this.done.clear();
  }

  /** Drops everything (the connection ended). */
  clear(): void {
    this.pending.clear();
    this.done.clear();
  }
}

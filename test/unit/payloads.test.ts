// Large payloads in bounded frames: cutting, hashing, assembling within limits, and the message
// that names the payload decoding to the same body as if it had carried the bytes.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  chunkPayload,
  createMessage,
  decodeMessage,
  encodeFrames,
  encodeTensorBytes,
  type Message,
  PayloadAssembler,
} from '../../shared/protocol/index.ts';

function loomCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('chunked payloads', () => {
  const bytes = randomBytes(10_000);

  it('cut a payload into hashed chunks that assemble back in any order', () => {
    const { ref, chunks } = chunkPayload(bytes, 3_000);
    expect(chunks.map((c) => c.bytes.byteLength)).toEqual([3_000, 3_000, 3_000, 1_000]);
    expect(ref.size).toBe(10_000);
    const assembler = new PayloadAssembler();
    for (const c of [chunks[2], chunks[0], chunks[3], chunks[1]]) assembler.accept(c);
    expect(Buffer.from(assembler.take(ref)).equals(bytes)).toBe(true);
    // A payload is handed out once.
    expect(loomCode(() => assembler.take(ref))).toBe('LOOM_ERR_PROTOCOL');
  });

  it('refuse a damaged chunk, a chunk twice, too many bytes and disagreeing counts', () => {
    const { chunks } = chunkPayload(bytes, 4_000);
    const damaged = { ...chunks[1], bytes: Buffer.from(chunks[1].bytes).fill(0) };
    expect(loomCode(() => new PayloadAssembler().accept(damaged))).toBe('LOOM_ERR_PROTOCOL');
    const twice = new PayloadAssembler();
    twice.accept(chunks[0]);
    expect(loomCode(() => twice.accept(chunks[0]))).toBe('LOOM_ERR_PROTOCOL');
    const other = new PayloadAssembler();
    other.accept(chunks[0]);
    expect(loomCode(() => other.accept({ ...chunks[1], count: 9 }))).toBe('LOOM_ERR_PROTOCOL');
    expect(loomCode(() => new PayloadAssembler().accept({ ...chunks[0], index: 7 }))).toBe(
      'LOOM_ERR_PROTOCOL',
    );
  });

  it('refuse a payload larger than the receiver accepts now, before holding any of it', () => {
    let max = 0;
    const assembler = new PayloadAssembler({ maxPayloadBytes: () => max });
    const { chunks } = chunkPayload(bytes, 4_000);
    expect(loomCode(() => assembler.accept(chunks[0]))).toBe('LOOM_ERR_PROTOCOL');
    expect(assembler.heldBytes).toBe(0);
    max = 10_000;
    assembler.accept(chunks[0]);
    expect(assembler.heldBytes).toBe(4_000);
  });

  it('hold at most a few payloads at once', () => {
    const assembler = new PayloadAssembler({ maxPending: 2 });
    for (let i = 0; i < 2; i++) assembler.accept(chunkPayload(randomBytes(100), 40).chunks[0]);
    expect(loomCode(() => assembler.accept(chunkPayload(randomBytes(100), 40).chunks[0]))).toBe(
      'LOOM_ERR_PROTOCOL',
    );
  });

  it('send a large train task as chunks and a reference, decoding to the same body', () => {
    const weights = encodeTensorBytes([
      {
        name: 'w',
        shape: [5000],
        dtype: 'float32',
        data: Float32Array.from({ length: 5000 }, (_, i) => i / 7),
      },
    ]);
    const msg = createMessage('train', {
      taskId: 't1',
      jobId: 'job-1',
      round: 2,
      model: { name: 'm', version: 1, architecture: { kind: 'logistic', inputShape: [2499], classes: 2 } },
      hyper: { epochs: 1, batchSize: 8, learningRate: 0.1 },
      weights,
    } as never) as Message;
    const cache = new WeakMap();
    const frames = encodeFrames(msg, { chunkBytes: 4096, cache });
    expect(frames.length).toBe(Math.ceil(weights.byteLength / 4096) + 1);
    // A second receiver shares the same chunk frames: the payload was cut and hashed once.
    const again = encodeFrames({ ...msg, id: 'other' } as Message, { chunkBytes: 4096, cache });
    expect(again.slice(0, -1)).toEqual(frames.slice(0, -1));
    expect(again.slice(0, -1).every((f, i) => f === frames[i])).toBe(true);

    const assembler = new PayloadAssembler();
    let decoded: Message | undefined;
    for (const frame of frames) {
      const m = decodeMessage(frame, { payloads: (ref) => assembler.take(ref) });
      if (m.type === 'chunk') assembler.accept(m.body);
      else decoded = m;
    }
    expect(decoded?.type).toBe('train');
    expect(Buffer.from((decoded!.body as { weights: Uint8Array }).weights).equals(weights)).toBe(true);
    // Without a place to find payloads, a reference is refused rather than guessed at.
    expect(loomCode(() => decodeMessage(frames[frames.length - 1]))).toBe('LOOM_ERR_PROTOCOL');
  });

  it('send a small payload inline, in one frame', () => {
    const msg = createMessage('cancel', { taskId: 't1' }) as Message;
    expect(encodeFrames(msg, { chunkBytes: 10 })).toHaveLength(1);
  });
});

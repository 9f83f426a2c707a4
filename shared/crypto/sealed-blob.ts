// Authenticated encryption of stored blobs (AES-256-GCM): the record's key is bound in as
// associated data, so a sealed blob moved to another record, or opened with another key, fails
// loudly instead of decrypting to garbage.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { LoomError } from '../errors/index.ts';
import type { DataKey } from './data-key.ts';

const MAGIC = Buffer.from('LOOMENC1', 'latin1');
const KEY_ID_BYTES = 8;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + KEY_ID_BYTES + IV_BYTES + TAG_BYTES;

/** True when `bytes` starts like a sealed blob. */
export function isSealed(bytes: Uint8Array): boolean {
  return (
    bytes.length >= HEADER_BYTES && Buffer.from(bytes.buffer, bytes.byteOffset, MAGIC.length).equals(MAGIC)
  );
}

/** The id of the key a sealed blob was made with. */
export function sealedKeyId(bytes: Uint8Array): string {
  if (!isSealed(bytes)) throw new LoomError('LOOM_ERR_STORE', 'the blob is not encrypted by Loom');
  return Buffer.from(bytes.buffer, bytes.byteOffset + MAGIC.length, KEY_ID_BYTES).toString('hex');
}

/** `plaintext` encrypted under `key`, bound to `context` (the record's key). Layout: magic, key id, IV, tag, ciphertext. */
export function sealBlob(key: DataKey, plaintext: Uint8Array, context: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([MAGIC, Buffer.from(key.id, 'hex'), iv, cipher.getAuthTag(), body]);
}

/**
 * The plaintext of a sealed blob. LOOM_ERR_DATA_KEY when it was sealed under another key,
 * LOOM_ERR_INTEGRITY when it does not authenticate (damaged, or moved from another record).
 */
export function openBlob(key: DataKey, sealed: Uint8Array, context: string): Buffer {
  const id = sealedKeyId(sealed);
  if (id !== key.id) {
    throw new LoomError(
      'LOOM_ERR_DATA_KEY',
      `${context} is encrypted with data key ${id}, not with the key in use (${key.id})`,
    );
  }
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const ivAt = MAGIC.length + KEY_ID_BYTES;
  const decipher = createDecipheriv('aes-256-gcm', key.key, buf.subarray(ivAt, ivAt + IV_BYTES));
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(buf.subarray(ivAt + IV_BYTES, HEADER_BYTES));
  try {
    return Buffer.concat([decipher.update(buf.subarray(HEADER_BYTES)), decipher.final()]);
  } catch (err) {
    throw new LoomError(
      'LOOM_ERR_INTEGRITY',
      `${context} does not authenticate: the stored copy is damaged`,
      {
        cause: err,
      },
    );
  }
}

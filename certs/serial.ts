// Random certificate serial numbers.
import { randomBytes } from 'node:crypto';

/**
 * 16 random bytes as lowercase hex, first byte in 0x01..0x7f.
 * The leading byte must be positive (DER INTEGER sign bit) and non-zero (DER forbids a redundant
 * leading zero and OpenSSL 3 rejects it), so the serial encodes to exactly 16 bytes.
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0] & 0x7f || 0x01;
  return bytes.toString('hex');
}

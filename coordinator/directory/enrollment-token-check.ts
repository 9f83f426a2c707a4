// The one rule for whether an enrollment token may be used, shared by the read-only pre-check
// and the atomic consume so both refuse with the same code and message.
import { LoomError } from '../../shared/errors/index.ts';
import type { EnrollmentTokenRecord } from './token-store.ts';

/** LOOM_ERR_TOKEN_INVALID for enrollment token `id`; `reason` completes "enrollment token <id> ...". */
export function enrollmentTokenInvalid(id: string, reason: string): LoomError {
  return new LoomError('LOOM_ERR_TOKEN_INVALID', `enrollment token ${id} ${reason}`, {
    details: { token: id, reason },
  });
}

/**
 * Throws LOOM_ERR_TOKEN_INVALID unless `token` exists, `matches(token.secretHash)`, is unused and
 * has not expired at `now` (default the current time). The secret is checked before the token's
 * state, so a caller without the secret learns nothing about whether it was used or has expired.
 */
export function assertEnrollmentTokenUsable(
  id: string,
  token: EnrollmentTokenRecord | undefined,
  matches: (secretHash: string) => boolean,
  now: Date = new Date(),
): asserts token is EnrollmentTokenRecord {
  if (token === undefined) throw enrollmentTokenInvalid(id, 'is unknown');
  if (!matches(token.secretHash)) throw enrollmentTokenInvalid(id, 'has a different secret');
  if (token.usedAt !== undefined) throw enrollmentTokenInvalid(id, `was already used at ${token.usedAt}`);
  // Written as "not before expiry" so an unparseable expiresAt counts as expired.
  if (!(now.getTime() < Date.parse(token.expiresAt))) {
    throw enrollmentTokenInvalid(id, `expired at ${token.expiresAt}`);
  }
}

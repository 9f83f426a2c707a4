// What a failed task is recorded as: the LoomError code it carries, or LOOM_ERR_INTERNAL.
import { isLoomError } from '../../shared/errors/index.ts';

export function errorOf(err: unknown): { code: string; reason: string } {
  return {
    code: isLoomError(err) ? err.code : 'LOOM_ERR_INTERNAL',
    reason: err instanceof Error ? err.message : String(err),
  };
}

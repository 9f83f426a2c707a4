// Agent labels (`site=berlin`, `tier=edge`): short keys and values without control characters,
// checked the same way where an operator gives them (enrollment, the API, the CLI).
import { LoomError } from '../errors/index.ts';

/** Limits of a label set. */
export const LABEL_LIMITS = { labels: 32, keyLength: 63, valueLength: 63 } as const;

const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
/** Printable: no control characters (they would mislead the audit log and the fleet view). */
const LABEL_VALUE = /^[^\p{Cc}]{1,63}$/u;

function bad(field: string, message: string): never {
  throw new LoomError('LOOM_ERR_INVALID_ARGUMENT', `${field} ${message}`, { details: { field } });
}

/** Throws LOOM_ERR_INVALID_ARGUMENT naming `field` unless `key` is a valid label key. */
export function assertLabelKey(key: string, field = 'label'): void {
  if (!LABEL_KEY.test(key)) {
    bad(
      field,
      `key "${key.slice(0, 80)}" must be 1 to ${LABEL_LIMITS.keyLength} letters, digits, '.', '_', '/' or '-', starting and ending with a letter or digit`,
    );
  }
}

/** Throws LOOM_ERR_INVALID_ARGUMENT naming `field` unless `value` is a valid label value. */
export function assertLabelValue(value: unknown, field = 'label'): asserts value is string {
  if (typeof value !== 'string' || !LABEL_VALUE.test(value)) {
    bad(
      field,
      `value must be a string of 1 to ${LABEL_LIMITS.valueLength} characters without control characters`,
    );
  }
}

/**
 * A label set from untrusted input (a JSON object of strings); LOOM_ERR_INVALID_ARGUMENT naming
 * `field` for anything else, a bad key or value, or more than 32 labels.
 */
export function parseLabels(raw: unknown, field = 'labels'): Record<string, string> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    bad(field, 'must be an object of strings');
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > LABEL_LIMITS.labels) bad(field, `must have at most ${LABEL_LIMITS.labels} labels`);
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    assertLabelKey(key, `${field}.${key.slice(0, 80)}`);
    assertLabelValue(value, `${field}.${key}`);
    out[key] = value;
  }
  return out;
}

/** `k=v` (as given to `--label` or `?label=`) → [k, v]; LOOM_ERR_INVALID_ARGUMENT when malformed. */
export function parseLabelPair(text: string, field = 'label'): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) bad(field, `"${text.slice(0, 80)}" must be KEY=VALUE`);
  const key = text.slice(0, at);
  const value = text.slice(at + 1);
  assertLabelKey(key, field);
  assertLabelValue(value, field);
  return [key, value];
}

/** Whether `labels` has every key of `selector` with the same value. */
export function matchesLabels(
  labels: Readonly<Record<string, string>> | undefined,
  selector: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

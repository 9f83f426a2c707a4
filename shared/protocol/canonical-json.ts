// Canonical JSON: JSON.stringify with object keys sorted at every depth, so equal data hashes equally.

/**
 * `value` as JSON with the keys of every plain object sorted. Follows JSON.stringify otherwise:
 * `toJSON` is honoured, undefined object fields are dropped, non-finite numbers become null.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) sorted[key] = (v as Record<string, unknown>)[key];
    return sorted;
  });
}

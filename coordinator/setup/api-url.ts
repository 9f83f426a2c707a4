// The operator API URL to show people: one whose host the server certificate names, so that
// copying it into curl or `loom agent enroll --coordinator` works.

/** Bind addresses that mean "every address of this host": none of them is a name to dial. */
const WILDCARDS = new Set(['', '0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0']);

/** True when `bind` listens on every address rather than one. */
export function isWildcardAddress(bind: string): boolean {
  return WILDCARDS.has(bind.trim().toLowerCase());
}

/**
 * The API URL for a server bound to `bind` on `port` whose certificate names `certHosts` (the
 * hosts given to init, in their order): `bind` itself when the certificate names it, else the
 * first certificate name (`localhost` when there is none). `matchesBind` is false when a
 * specific bind address is not in the certificate, which is worth a warning: clients dialling
 * that address will refuse the certificate.
 */
export function apiUrlFor(
  bind: string,
  certHosts: readonly string[],
  port: number,
): { url: string; host: string; matchesBind: boolean } {
  const named = certHosts.some((h) => h.toLowerCase() === bind.toLowerCase());
  const wildcard = isWildcardAddress(bind);
  const host = named && !wildcard ? bind : (certHosts[0] ?? 'localhost');
  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    matchesBind: wildcard || named,
  };
}

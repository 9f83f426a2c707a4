// subjectAltName entries for server certificates: IP literals as iPAddress, everything else as dNSName.
import { isIP } from 'node:net';
import type { ForgeExtension } from './sign.ts';

const SAN_DNS = 2;
const SAN_IP = 7;

/**
 * Builds a forge subjectAltName extension. IPs are encoded here rather than by forge, whose parser
 * misreads IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as IPv4.
 */
export function subjectAltNameExtension(hosts: readonly string[]): ForgeExtension {
  if (!Array.isArray(hosts) || hosts.length === 0) throw new TypeError('hosts must be a non-empty array');
  const altNames = hosts.map((host) => {
    if (typeof host !== 'string' || host.length === 0)
      throw new TypeError('each host must be a non-empty string');
    const family = isIP(host);
    if (family === 0) return { type: SAN_DNS, value: host };
    if (host.includes('%')) throw new TypeError(`IPv6 zone ids cannot go in a certificate: ${host}`);
    const bytes = family === 4 ? host.split('.').map(Number) : ipv6Bytes(host);
    return { type: SAN_IP, value: Buffer.from(bytes).toString('binary') };
  });
  return { name: 'subjectAltName', altNames };
}

/** 16 bytes of an IPv6 literal already validated by isIP. */
function ipv6Bytes(ip: string): number[] {
  // The WHATWG URL parser canonicalises to pure hex groups (embedded IPv4 included), leaving only '::'.
  const canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const [head, tail] = canonical.split('::');
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : []);
  const left = groups(head);
  const right = groups(tail);
  const all =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return all.flatMap((g) => {
    const n = Number.parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

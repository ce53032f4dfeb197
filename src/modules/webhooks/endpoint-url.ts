import net from 'node:net';

/**
 * Addresses a webhook must not reach unless private networks are allowed: loopback, private
 * (RFC 1918, unique local), link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
 * "this network" and unspecified. Names are checked again at connection time by the sender's agent.
 */
const blocked = new net.BlockList();
for (const [address, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const)
  blocked.addSubnet(address, prefix, 'ipv4');
for (const [address, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const)
  blocked.addSubnet(address, prefix, 'ipv6');

export const MAX_URL_LENGTH = 2048;

/** Why a URL cannot be an endpoint, or null when it can. */
export function endpointUrlProblem(raw: string, allowPrivateNetworks: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'Not a valid URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'Use an http or https URL';
  if (url.username || url.password) return 'Put no credentials in the URL; verify the signature instead';
  if (allowPrivateNetworks) return null;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const family = net.isIP(host);
  if (!family) return null;
  // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is the IPv4 address it carries.
  const mapped = family === 6 ? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)?.[1] ?? hexMappedIpv4(host) : null;
  const isBlocked = mapped ? blocked.check(mapped, 'ipv4') : blocked.check(host, family === 4 ? 'ipv4' : 'ipv6');
  return isBlocked ? 'The address is private, loopback or link-local; webhooks must reach a public address' : null;
}

/** WHATWG URL writes ::ffff:127.0.0.1 as ::ffff:7f00:1. */
function hexMappedIpv4(host: string): string | null {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(host);
  if (!m) return null;
  const hi = parseInt(m[1], 16);
  const lo = parseInt(m[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

// Who a request comes from, for rate limits and login throttling. X-Forwarded-For is written by
// the client unless a proxy we trust replaced or extended it, so it is believed only when the
// server was told it sits behind one: --trust-proxy (any peer is that proxy), or --share (the
// tunnel client connects from loopback, and the tunnel's front proxy appends the visitor's
// address). Only the right-most entry is used: that is the one our proxy added.
import { isIP } from 'node:net';

export const proxyTrusts = ['none', 'proxy', 'tunnel'] as const;
export type ProxyTrust = (typeof proxyTrusts)[number];

function isLoopback(addr: string): boolean {
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

/** Whether the hop `addr` (0 = the peer) may set X-Forwarded-For; Express's 'trust proxy' form. */
export function trustsHop(trust: ProxyTrust): (addr: string, hop: number) => boolean {
  if (trust === 'proxy') return (_addr, hop) => hop === 0;
  if (trust === 'tunnel') return (addr, hop) => hop === 0 && isLoopback(addr);
  return () => false;
}

/** The client's address: the peer, or the address its trusted proxy reports. */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trust: ProxyTrust): string {
  const self = peer ?? 'unknown';
  if (!trustsHop(trust)(self, 0) || forwardedFor === undefined) return self;
  const last = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').at(-1)?.trim() ?? '';
  return isIP(last) ? last : self;
}

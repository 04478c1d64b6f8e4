// Access control for the public link: one token, accepted as a bearer header, an
// x-access-token header, the svd_token cookie, or ?token= in the link (which then sets the cookie).
// Whatever a client sends is checked for shape before it is compared, and each client may send
// only a few wrong tokens a minute.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { clientAddress, type ProxyTrust } from './client-address.js';

export const TOKEN_COOKIE = 'svd_token';

/** A token as a client may send it; anything else is refused before comparing. */
const tokenSchema = z.string().min(1).max(512);

export function generateToken(): string {
  return randomBytes(18).toString('base64url');
}

/** The named cookie's value; undefined when absent or not valid percent-encoding. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k !== name) continue;
    try {
      return decodeURIComponent(v.join('='));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Compares digests, so neither the length nor the content of the expected token leaks by timing. */
export function tokenMatches(expected: string | undefined, given: string | undefined): boolean {
  if (!expected) return true;
  if (!given) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(expected), digest(given));
}

export type TokenLookup = { ok: true; token?: string } | { ok: false; error: string };

/** Where a client may put the token, in the order they are looked at. */
export interface TokenSources {
  authorization?: unknown;
  header?: unknown;
  query?: unknown;
  handshake?: unknown;
  cookie?: unknown;
}

const BAD_TOKEN = 'the access token must be text of at most 512 characters, given once';

/** The token a client sent, or why what it sent cannot be a token. */
export function lookupToken(src: TokenSources): TokenLookup {
  const bearer = typeof src.authorization === 'string' && src.authorization.startsWith('Bearer ') ? src.authorization.slice(7).trim() : undefined;
  for (const value of [bearer, src.header, src.query, src.handshake]) {
    if (value === undefined || value === '') continue;
    const parsed = tokenSchema.safeParse(value);
    return parsed.success ? { ok: true, token: parsed.data } : { ok: false, error: BAD_TOKEN };
  }
  const cookie = typeof src.cookie === 'string' ? tokenSchema.safeParse(readCookie(src.cookie, TOKEN_COOKIE)) : undefined;
  return { ok: true, token: cookie?.success ? cookie.data : undefined };
}

export function tokenFromRequest(req: Request): TokenLookup {
  return lookupToken({ authorization: req.headers.authorization, header: req.headers['x-access-token'], query: req.query.token, cookie: req.headers.cookie });
}

/**
 * Counts wrong tokens per client in fixed windows; a client over the limit is refused, even with
 * the right token, until its window ends. Bounded: the oldest clients are forgotten first.
 */
export class FailedLoginThrottle {
  private readonly clients = new Map<string, { count: number; resetAt: number }>();

  constructor(readonly opts: { limit: number; windowMs: number; maxClients?: number } = { limit: 10, windowMs: 60_000 }) {}

  /** Milliseconds this client must wait; 0 when it may try. */
  blockedFor(client: string, now = Date.now()): number {
    const entry = this.clients.get(client);
    if (!entry || entry.resetAt <= now) return 0;
    return entry.count >= this.opts.limit ? entry.resetAt - now : 0;
  }

  fail(client: string, now = Date.now()): void {
    let entry = this.clients.get(client);
    if (!entry || entry.resetAt <= now) {
      this.clients.delete(client);
      const max = this.opts.maxClients ?? 10_000;
      for (const [k, e] of this.clients) {
        if (this.clients.size < max && e.resetAt > now) break;
        this.clients.delete(k);
      }
      entry = { count: 0, resetAt: now + this.opts.windowMs };
      this.clients.set(client, entry);
    }
    entry.count++;
  }
}

export function throttledMessage(waitMs: number): string {
  return `too many wrong access tokens from your address; wait ${Math.ceil(waitMs / 1000)} s and try again with the right one`;
}

export interface Gate {
  token: string | undefined;
  throttle: FailedLoginThrottle;
  trust: ProxyTrust;
}

/** Checks a client's token; the HTTP status and message when it may not pass. */
export function checkAccess(gate: Gate, lookup: TokenLookup, client: string): { status: 400 | 401 | 429; error: string } | undefined {
  if (!gate.token) return undefined;
  const wait = gate.throttle.blockedFor(client);
  if (wait > 0) return { status: 429, error: throttledMessage(wait) };
  if (!lookup.ok) {
    gate.throttle.fail(client);
    return { status: 400, error: lookup.error };
  }
  if (!lookup.token) return { status: 401, error: 'this server needs an access token: send it as "Authorization: Bearer TOKEN", an x-access-token header, or ?token=TOKEN in the link' };
  if (tokenMatches(gate.token, lookup.token)) return undefined;
  gate.throttle.fail(client);
  return { status: 401, error: 'wrong access token' };
}

export function requestClient(req: { socket: { remoteAddress?: string }; headers: IncomingHttpHeaders }, trust: ProxyTrust): string {
  return clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trust);
}

/** Rejects API calls without the token; a valid ?token= also sets the cookie for the page. */
export function requireToken(gate: Gate) {
  return (req: Request, res: Response, next: NextFunction) => {
    const lookup = tokenFromRequest(req);
    const refused = checkAccess(gate, lookup, requestClient(req, gate.trust));
    if (refused) {
      if (refused.status === 429) res.setHeader('retry-after', String(Math.ceil(gate.throttle.blockedFor(requestClient(req, gate.trust)) / 1000)));
      res.status(refused.status).json({ error: refused.error });
      return;
    }
    if (gate.token && typeof req.query.token === 'string') {
      res.cookie(TOKEN_COOKIE, gate.token, { httpOnly: true, sameSite: 'lax', secure: req.secure, maxAge: 30 * 24 * 3600 * 1000 });
    }
    next();
  };
}

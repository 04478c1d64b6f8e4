// Access control for the public link: one token, accepted as a bearer header, an
// x-access-token header, the svd_token cookie, or ?token= in the link (which then sets the cookie).
// Whatever a client sends is checked for shape before it is compared, and each client may send
// only a few wrong tokens a minute. Every token a request carries is tried: a page on a sibling
// domain can toss a second svd_token cookie beside ours, and that must neither hide the right one
// nor count the owner's own requests as wrong guesses.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { clientAddress, type ProxyTrust } from './client-address.js';

export const TOKEN_COOKIE = 'svd_token';
/** Over HTTPS: a host-only cookie (Secure, Path=/, no Domain) that no sibling domain can set. */
export const HOST_PREFIX = '__Host-';
/** More values than any honest browser sends for one name; the rest are ignored. */
const MAX_COOKIE_VALUES = 8;

/** A token as a client may send it; anything else is refused before comparing. */
const tokenSchema = z.string().min(1).max(512);

export function generateToken(): string {
  return randomBytes(18).toString('base64url');
}

/** Every value the header carries for the named cookie, in order (values that are not valid percent-encoding are skipped). */
export function readCookies(header: string | undefined, name: string): string[] {
  const values: string[] = [];
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k !== name || values.length >= MAX_COOKIE_VALUES) continue;
    try {
      values.push(decodeURIComponent(v.join('=')));
    } catch {
      // a tossed or damaged value; the others still count
    }
  }
  return values;
}

/** Compares digests, so neither the length nor the content of the expected token leaks by timing. */
export function tokenMatches(expected: string | undefined, given: string | undefined): boolean {
  if (!expected) return true;
  if (!given) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(expected), digest(given));
}

/** Every well-formed token the client sent (none when it sent none), and why a value it sent where a token goes cannot be one. */
export interface TokenLookup {
  tokens: string[];
  malformed?: string;
}

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
  const tokens: string[] = [];
  let malformed: string | undefined;
  for (const value of [bearer, src.header, src.query, src.handshake]) {
    if (value === undefined || value === '') continue;
    const parsed = tokenSchema.safeParse(value);
    if (parsed.success) tokens.push(parsed.data);
    else malformed = BAD_TOKEN;
  }
  // Cookies may have been set by someone else (a sibling domain): malformed ones are skipped, not refused.
  const header = typeof src.cookie === 'string' ? src.cookie : undefined;
  for (const value of [...readCookies(header, HOST_PREFIX + TOKEN_COOKIE), ...readCookies(header, TOKEN_COOKIE)]) {
    if (tokenSchema.safeParse(value).success) tokens.push(value);
  }
  return { tokens, malformed };
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

/**
 * Browsers (by their client id) that have shown the right token before: one of them keeps passing
 * with the right token while its address is throttled, so guesses from elsewhere on the same
 * address (another page in the owner's browser) cannot lock the owner out. Bounded, oldest first.
 */
export class KnownClients {
  private readonly ids = new Set<string>();
  constructor(private readonly max = 10_000) {}

  add(id: string): void {
    this.ids.delete(id);
    this.ids.add(id);
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value!);
  }

  has(id: string | undefined): boolean {
    return id !== undefined && this.ids.has(id);
  }
}

export interface Gate {
  token: string | undefined;
  throttle: FailedLoginThrottle;
  trust: ProxyTrust;
  known: KnownClients;
}

/**
 * Checks a client's tokens; the HTTP status and message when it may not pass. A request passes
 * when any token it carries is right; wrong ones count against its address only when none is.
 * `clientId` is the browser's id cookie, if it sent one.
 */
export function checkAccess(gate: Gate, lookup: TokenLookup, client: string, clientId?: string): { status: 400 | 401 | 429; error: string } | undefined {
  if (!gate.token) return undefined;
  const wait = gate.throttle.blockedFor(client);
  // A malformed or wrong value beside the right token (a page elsewhere adding ?token=...) is no reason to refuse.
  const right = lookup.tokens.some((t) => tokenMatches(gate.token, t));
  if (right && (wait === 0 || gate.known.has(clientId))) {
    if (clientId) gate.known.add(clientId);
    return undefined;
  }
  if (wait > 0) return { status: 429, error: throttledMessage(wait) };
  if (lookup.malformed) {
    gate.throttle.fail(client);
    return { status: 400, error: lookup.malformed };
  }
  if (!lookup.tokens.length) return { status: 401, error: 'this server needs an access token: send it as "Authorization: Bearer TOKEN", an x-access-token header, or ?token=TOKEN in the link' };
  gate.throttle.fail(client);
  return { status: 401, error: 'wrong access token' };
}

export function requestClient(req: { socket: { remoteAddress?: string }; headers: IncomingHttpHeaders }, trust: ProxyTrust): string {
  return clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trust);
}

/**
 * Rejects API calls without the token; a valid ?token= also sets the cookie for the page
 * (host-only `__Host-svd_token` where the page is served over HTTPS).
 */
export function requireToken(gate: Gate, clientIdOf: (req: Request, res: Response) => string | undefined, https: (req: Request) => boolean) {
  return (req: Request, res: Response, next: NextFunction) => {
    const lookup = tokenFromRequest(req);
    const refused = checkAccess(gate, lookup, requestClient(req, gate.trust), clientIdOf(req, res));
    if (refused) {
      if (refused.status === 429) res.setHeader('retry-after', String(Math.ceil(gate.throttle.blockedFor(requestClient(req, gate.trust)) / 1000)));
      res.status(refused.status).json({ error: refused.error });
      return;
    }
    if (gate.token && typeof req.query.token === 'string') {
      const secure = https(req);
      res.cookie(secure ? HOST_PREFIX + TOKEN_COOKIE : TOKEN_COOKIE, gate.token, { httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: 30 * 24 * 3600 * 1000 });
    }
    next();
  };
}

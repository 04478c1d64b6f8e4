// Access control for the public link: one token, accepted as a bearer header, an
// x-access-token header, the svd_token cookie, or ?token= in the link (which then sets the cookie).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

export const TOKEN_COOKIE = 'svd_token';

export function generateToken(): string {
  return randomBytes(18).toString('base64url');
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

export function tokenMatches(expected: string | undefined, given: string | undefined): boolean {
  if (!expected) return true;
  if (!given) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function tokenFromRequest(req: Request): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  const header = req.headers['x-access-token'];
  if (typeof header === 'string') return header;
  const query = req.query.token;
  if (typeof query === 'string') return query;
  return readCookie(req.headers.cookie, TOKEN_COOKIE);
}

/** Rejects API calls without the token; a valid ?token= also sets the cookie for the page. */
export function requireToken(token: string | undefined) {
  return (req: Request, res: Response, next: NextFunction) => {
    const given = tokenFromRequest(req);
    if (!tokenMatches(token, given)) {
      res.status(401).json({ error: given ? 'wrong access token' : 'this server needs an access token: send it as "Authorization: Bearer TOKEN", an x-access-token header, or ?token=TOKEN in the link' });
      return;
    }
    if (token && typeof req.query.token === 'string') {
      res.cookie(TOKEN_COOKIE, token, { httpOnly: true, sameSite: 'lax', secure: req.secure, maxAge: 30 * 24 * 3600 * 1000 });
    }
    next();
  };
}

// Who may do what: each browser gets a random client id in a cookie on first contact and owns the
// jobs it makes; requests that change anything must come from the page's own origin; and, on a
// server with no token, only under a loopback host name (a DNS-rebinding page has its own name).
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { HOST_PREFIX, readCookies } from '../auth.js';
import type { ProxyTrust } from '../client-address.js';
import type { JobRecord } from '../jobs/job.js';

export const CLIENT_COOKIE = 'svd_client';
const CLIENT_ID = /^[A-Za-z0-9_-]{16,64}$/;
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The host name of a Host header or an origin's authority, without the port. */
function hostName(host: string): string {
  return host.toLowerCase().replace(/:\d+$/, '');
}

export function isLoopbackHost(host: string | undefined): boolean {
  return host !== undefined && LOOPBACK_NAMES.has(hostName(host));
}

export interface AccessOptions {
  trust: ProxyTrust;
  /** Every visitor sees and controls every job (--shared-history): one person on several devices. */
  sharedHistory: boolean;
  /** Host names requests may be addressed to; any when absent (a token guards the server). */
  allowedHosts?: string[];
}

/**
 * Whether a request reached us over HTTPS: directly, through a proxy we trust (X-Forwarded-Proto),
 * or through the --share tunnel, whose public links are always HTTPS.
 */
export function viaHttps(headers: IncomingHttpHeaders, encrypted: boolean, trust: ProxyTrust): boolean {
  if (encrypted) return true;
  if (trust === 'proxy')
    return (
      String(headers['x-forwarded-proto'] ?? '')
        .split(',')[0]
        ?.trim() === 'https'
    );
  return trust === 'tunnel' && !isLoopbackHost(headers.host);
}

/** The client id a request carries: the x-client-id header (API users), else the cookie. */
export function clientIdOf(headers: IncomingHttpHeaders, https: boolean): string | undefined {
  const header = headers['x-client-id'];
  if (typeof header === 'string') return CLIENT_ID.test(header) ? header : undefined;
  // Over HTTPS only the host-only cookie is believed: a sibling domain can set the plain name.
  const [value] = readCookies(headers.cookie, https ? HOST_PREFIX + CLIENT_COOKIE : CLIENT_COOKIE);
  return value && CLIENT_ID.test(value) ? value : undefined;
}

/** What a job records as its owner: a digest, so job.json never holds a usable id. */
export function ownerOf(clientId: string | undefined): string | undefined {
  return clientId && createHash('sha256').update(`svd-studio client ${clientId}`).digest('hex').slice(0, 32);
}

/**
 * Sets the client id cookie on first contact (the page's first load) and keeps the request's
 * owner digest in res.locals.owner. A request without any id is the token holder's: it sees the
 * jobs that have no owner (made before jobs had owners, or by API users who send no id).
 */
export function identify(opts: AccessOptions) {
  return (req: Request, res: Response, next: NextFunction) => {
    const https = viaHttps(req.headers, req.secure, opts.trust);
    const header = req.headers['x-client-id'];
    if (header !== undefined && (typeof header !== 'string' || !CLIENT_ID.test(header))) {
      return void res.status(400).json({ error: 'x-client-id must be 16–64 letters, digits, "-" or "_", sent once; or leave it out' });
    }
    const id = clientIdOf(req.headers, https);
    res.locals.owner = ownerOf(id);
    res.locals.clientId = id;
    if (!id && req.headers['x-client-id'] === undefined) {
      res.cookie(https ? HOST_PREFIX + CLIENT_COOKIE : CLIENT_COOKIE, randomBytes(18).toString('base64url'), {
        httpOnly: true,
        sameSite: 'lax',
        secure: https,
        path: '/',
        maxAge: 400 * 24 * 3600 * 1000,
      });
    }
    next();
  };
}

/** Whether the client with this owner digest may see and control the job. */
export function mayAccess(job: JobRecord, owner: string | undefined, opts: Pick<AccessOptions, 'sharedHistory'>): boolean {
  return opts.sharedHistory || job.owner === undefined || job.owner === owner;
}

/** Why a request addressed to this Host is refused (a DNS-rebinding page has its own name), or undefined. */
export function hostRefusal(headers: IncomingHttpHeaders, allowedHosts: string[] | undefined): string | undefined {
  const host = headers.host;
  if (!allowedHosts || (host && allowedHosts.includes(hostName(host)))) return undefined;
  return `this server answers only to ${allowedHosts.join(', ')}; open it by that address`;
}

const OTHER_PAGE = 'requests from other pages are refused; use the page this server serves';

/**
 * Why a browser request from another page is refused, or undefined. A sibling page on the
 * tunnel's domain is "same site" to the browser and carries our cookies, so Origin (and
 * Sec-Fetch-Site) are what tell it apart. Clients that are not browsers send neither.
 */
export function originRefusal(headers: IncomingHttpHeaders, trust: ProxyTrust): string | undefined {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return OTHER_PAGE;
  const origin = headers.origin;
  if (origin === undefined) return undefined;
  const forwardedHost = trust !== 'none' && typeof headers['x-forwarded-host'] === 'string' ? headers['x-forwarded-host'] : undefined;
  let originHost: string;
  try {
    originHost = new URL(origin).host.toLowerCase();
  } catch {
    return OTHER_PAGE;
  }
  const ours = [headers.host, forwardedHost].filter((h): h is string => !!h).map((h) => h.toLowerCase());
  return ours.includes(originHost) ? undefined : OTHER_PAGE;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Refuses with 403 any request to a host we do not answer to, and a state-changing one from another page. */
export function sameOrigin(opts: AccessOptions) {
  return (req: Request, res: Response, next: NextFunction) => {
    const refusal = hostRefusal(req.headers, opts.allowedHosts) ?? (SAFE_METHODS.has(req.method) ? undefined : originRefusal(req.headers, opts.trust));
    if (refusal) return void res.status(403).json({ error: refusal });
    next();
  };
}

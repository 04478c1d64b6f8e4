// The page's link to the server: HTTP calls with the access token, and one socket.io connection.
import { io, type Socket } from 'socket.io-client';
import type { HealthResponse, JobSnapshotOf } from '../../server/api-types.js';

const TOKEN_KEY = 'svd-studio-token';

export type Health = HealthResponse;
export type Job = JobSnapshotOf<Record<string, unknown> & { formats: string[]; width: number; height: number }>;

export class AuthError extends Error {}

export function token(): string | undefined {
  return localStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** A token in the link (?token=...) is kept for later visits and removed from the address bar. */
export function takeTokenFromLink(): void {
  const url = new URL(location.href);
  const t = url.searchParams.get('token');
  if (!t) return;
  localStorage.setItem(TOKEN_KEY, t);
  url.searchParams.delete('token');
  history.replaceState(null, '', url.toString());
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const t = token();
  const res = await fetch(`/api/${path}`, { ...init, headers: { ...(init.headers ?? {}), ...(t ? { authorization: `Bearer ${t}` } : {}) } });
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (res.status === 401) throw new AuthError(body.error ?? 'access token required');
  if (!res.ok) throw new Error(body.error ?? `request failed (${res.status})`);
  return body;
}

/** Checks a token; on success keeps it, and the ?token request sets the cookie that media links need. */
export async function login(candidate: string): Promise<Health> {
  const res = await fetch(`/api/health?token=${encodeURIComponent(candidate)}`);
  if (res.status === 401) throw new AuthError('that token is not right');
  localStorage.setItem(TOKEN_KEY, candidate);
  return (await res.json()) as Health;
}

export async function ensureMediaCookie(): Promise<void> {
  const t = token();
  if (t) await fetch(`/api/health?token=${encodeURIComponent(t)}`);
}

export function submitJob(image: Blob, name: string, settings: object): Promise<{ id: string; position: number }> {
  const form = new FormData();
  form.append('image', image, name);
  form.append('settings', JSON.stringify(settings));
  return api('jobs', { method: 'POST', body: form });
}

export function connectSocket(): Socket {
  return io({ auth: (cb) => cb({ token: token() }), transports: ['websocket', 'polling'], reconnectionDelayMax: 4000 });
}

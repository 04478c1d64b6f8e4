// The page's link to the server: HTTP calls with the access token, and one typed socket.io connection.
import { io, type Socket } from 'socket.io-client';
import type { HealthResponse, JobSnapshot, Submitted } from '../../common/api-types.js';
import type { JobSettingsInput } from '../../common/settings.js';
import type { ClientToServerEvents, ServerToClientEvents } from '../../common/socket-events.js';
import type { VideoFormat } from '../../common/video-formats.js';

const TOKEN_KEY = 'svd-studio-token';

export type Health = HealthResponse;
export type Job = JobSnapshot;
export type JobSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

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

const authHeaders = (): Record<string, string> => {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
};

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`/api/${path}`, { ...init, headers: { ...(init.headers ?? {}), ...authHeaders() } });
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

export function submitJob(image: Blob, name: string, settings: JobSettingsInput): Promise<Submitted> {
  const form = new FormData();
  form.append('image', image, name);
  form.append('settings', JSON.stringify(settings));
  return api('jobs', { method: 'POST', body: form });
}

export const rerunJob = (id: string) => api<Submitted>(`jobs/${id}/rerun`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
export const cancelJob = (id: string) => api<Job>(`jobs/${id}`, { method: 'DELETE' });
/** A new job from the last frame of finished job `id`. */
export const continueJob = (id: string) => api<Submitted>(`jobs/${id}/continue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
/** Deletes an ended job and its files from the server (copies in the save folder stay). */
export const deleteJob = (id: string) => api<{ id: string; removed: true }>(`history/${id}`, { method: 'DELETE' });

/** Jobs a page of history holds; older ones come with "Show older". */
export const HISTORY_PAGE = 50;
/** One page of this browser's history, newest first, after the job `before` when given. */
export const listJobs = (before?: string) => api<Job[]>(`jobs?limit=${HISTORY_PAGE}${before ? `&before=${before}` : ''}`);

export const inputUrl = (id: string) => `/api/jobs/${id}/input.png`;
export const posterUrl = (id: string) => `/api/jobs/${id}/poster.jpg`;
export const videoUrl = (id: string, format: VideoFormat, download = false) => `/api/jobs/${id}/video.${format}${download ? '?download' : ''}`;

/** A job's input image as a file, to put it back into the image box. */
export async function fetchInput(id: string): Promise<File> {
  const res = await fetch(inputUrl(id), { headers: authHeaders() });
  if (!res.ok) throw new Error(`could not load the image of job ${id} (${res.status})`);
  return new File([await res.blob()], `job-${id}.png`, { type: 'image/png' });
}

export function connectSocket(): JobSocket {
  return io({ auth: (cb) => cb({ token: token() }), transports: ['websocket', 'polling'], reconnectionDelayMax: 4000 });
}

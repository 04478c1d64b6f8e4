// socket.io's typed event maps (its ServerToClientEvents / ClientToServerEvents generics), used by
// the server's Server and the page's Socket so both sides agree on names and payloads.
import type { JobSnapshot, JobStatus } from './api-types.js';

export type HistoryEvent = { id: string; status: JobStatus; job: JobSnapshot; removed?: undefined } | { id: string; removed: true; status?: undefined; job?: undefined };

export type WatchReply = { job: JobSnapshot; error?: undefined } | { job?: undefined; error: string };

export interface ServerToClientEvents {
  /** A watched job changed (progress, status, result). */
  job: (job: JobSnapshot) => void;
  /** The middle frame's current estimate of a watched job, as a JPEG data URL. */
  preview: (p: { id: string; url: string }) => void;
  /** A job this client may see changed (with its new snapshot) or was deleted (`removed`). */
  history: (e: HistoryEvent) => void;
}

export interface ClientToServerEvents {
  /** Join a job's room; the reply carries its full snapshot. Send again after every reconnect. */
  watch: (id: string, ack: (reply: WatchReply) => void) => void;
  unwatch: (id: string) => void;
}

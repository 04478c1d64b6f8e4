// The shapes the HTTP API and socket.io send, shared by the server and the page.
import type { JobProgress } from './progress.js';
import type { JobSettings } from './settings.js';
import type { VideoFormat } from './video-formats.js';
import type { WorkerStatus } from './worker-protocol.js';

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export interface JobRecord {
  id: string;
  status: JobStatus;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  settings: JobSettings;
  /** The seed actually used (set once generation starts). */
  seed?: number;
  progress?: JobProgress;
  error?: string;
  /** Video files written, by format. */
  videos: Partial<Record<VideoFormat, string>>;
  inputName: string;
  saved?: { status: 'pending' | 'saved' | 'failed'; files?: string[]; error?: string };
  /** The job this one re-runs, if any. */
  rerunOf?: string;
  provider?: string;
  timings?: { totalMs: number };
  /** A digest of the client id of the browser (or API user) that made it; absent for jobs made
   * before jobs had owners, or by API users who send no id. Never sent to clients. */
  owner?: string;
}

/** A job as the API and socket.io send it: the record plus where it stands in the queue. */
export type JobSnapshot = Omit<JobRecord, 'owner'> & { position: number; queueLength: number };

export interface HealthInfo {
  /** The model loaded now (or loading); `demo`: the tiny random-weight model, whose output is noise. */
  model: { path: string; demo: boolean; frames?: number };
  /** Every model a job may ask for by name (settings.model). */
  /** `fast`: a consistency-distilled model (AnimateLCM), run with fastModelDefaults. */
  models: { name: string; demo: boolean; frames: number; fast: boolean }[];
  status: 'loading' | 'ready' | 'error';
  provider?: string;
  error?: string;
  gpu?: { name: string; memoryTotalMiB: number; memoryUsedMiB: number };
  ffmpeg: { ok: boolean; error?: string };
  /** Whether a Drive-style save folder is configured. */
  saveDir: boolean;
  /** The save folder is a mounted Google Drive (on Colab), not a folder on the server's disk. */
  saveDirOnDrive?: boolean;
  /** The inference worker processes (one per GPU) and what each is doing. */
  workers: WorkerStatus[];
  /** Whether every visitor sees every job (--shared-history) or each browser only its own. */
  sharedHistory?: boolean;
}

export type HealthResponse = HealthInfo & { queue: { waiting: number; running: string | null } };

/** `202` from POST /api/jobs and POST /api/jobs/:id/rerun. */
export interface Submitted {
  id: string;
  position: number;
}

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
  /** Each segment's seed, when the job has several (settings.extend). */
  seeds?: number[];
  progress?: JobProgress;
  error?: string;
  /** Video files written, by format. */
  videos: Partial<Record<VideoFormat, string>>;
  inputName: string;
  saved?: { status: 'pending' | 'saved' | 'failed'; files?: string[]; error?: string };
  /** The job this one re-runs, if any. */
  rerunOf?: string;
  /** The job whose last frame is this one's input ("Continue from the last frame"). */
  continues?: string;
  /** One of several videos asked for together (settings.variations): the first job's id, this one's place and how many. */
  variation?: { group: string; index: number; of: number };
  provider?: string;
  timings?: { totalMs: number };
}

/** A job as the API and socket.io send it: the record plus where it stands in the queue. */
export type JobSnapshot = JobRecord & { position: number; queueLength: number };

export interface HealthInfo {
  /** The model loaded now (or loading); `demo`: the tiny random-weight model, whose output is noise. */
  model: { path: string; demo: boolean; frames?: number };
  /** Every model a job may ask for by name (settings.model). */
  models: { name: string; demo: boolean; frames: number; interpolator: boolean }[];
  status: 'loading' | 'ready' | 'error';
  provider?: string;
  error?: string;
  gpu?: { name: string; memoryTotalMiB: number; memoryUsedMiB: number };
  ffmpeg: { ok: boolean; error?: string };
  /** Whether a Drive-style save folder is configured. */
  saveDir: boolean;
  /** The inference worker processes (one per GPU) and what each is doing. */
  workers: WorkerStatus[];
}

export type HealthResponse = HealthInfo & { queue: { waiting: number; running: string | null } };

/** `202` from POST /api/jobs and POST /api/jobs/:id/rerun. */
export interface Submitted {
  id: string;
  position: number;
  /** Every job made, first to last, where the settings asked for several variations. */
  ids?: string[];
}

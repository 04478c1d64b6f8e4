// The seam between the job service and where jobs wait and run. The service owns the records
// (store, progress, end states, saving); a queue decides when and where each job runs: the
// in-process FIFO in front of this server's own workers (local-queue.ts), or a BullMQ queue in
// Redis in front of worker boxes on other machines (server/queue/redis-queue.ts).
import type { EtaEstimator } from './eta.js';
import type { JobFinisher } from './job-finisher.js';
import type { JobProgress, JobRecord } from './job.js';
import type { JobStore } from './job-store.js';

/** What a queue may do to the jobs it holds, through the service. */
export interface JobHost {
  readonly store: JobStore;
  readonly finisher: JobFinisher;
  readonly eta?: EtaEstimator;
  /** True once the server is shutting down: nothing starts or ends any more. */
  readonly closing: boolean;
  /** Sets the job's progress (with the ETA), writes it when `persist`, and announces it. */
  setProgress(job: JobRecord, progress: JobProgress, persist?: boolean): void;
  /**
   * Gives each job in `ids` (the waiting jobs, next first) its place and wait, from index `from`
   * on (a job just added: only itself).
   */
  announceQueued(ids: readonly string[], from?: number): void;
  /** A running job's latest preview: kept for late watchers and announced. */
  preview(id: string, url: string): void;
  /** Ends the job: status, log, ETA learning, save to the folder when asked and done. */
  finish(job: JobRecord, status: Exclude<JobRecord['status'], 'queued' | 'running'>, error?: string): void;
  /** The message a job fails with for an error (a full disk in the server's words). */
  failureMessage(err: unknown): string;
}

export interface JobQueue {
  /** Jobs waiting to start. */
  readonly waiting: number;
  /** 1 for the next job to run; 0 when running or not queued. */
  position(id: string): number;
  /** The longest-running job, if any. */
  readonly runningId: string | undefined;
  /** Queues a job whose record (status queued) and input are in the store. */
  add(job: JobRecord): void;
  /** Cancels a queued or running job; false when this queue no longer holds it. */
  cancel(job: JobRecord): boolean;
  /** Shutdown: nothing starts any more; running jobs are left to the next start. */
  close(): Promise<void>;
}

// The job service: the jobs' records, persisting every state change to the job's folder and
// announcing it to listeners. Where jobs wait and run is its queue's business (job-queue.ts): by
// default a FIFO in front of this server's inference workers (local-queue.ts); the finisher
// (job-finisher.ts) encodes and saves the videos.
import { EventEmitter } from 'node:events';
import { randomSeed } from '../../models/pipeline/random.js';
import type { WorkerPool } from '../workers/pool.js';
import { DiskFullError, isNoSpace } from '../../media/disk-full.js';
import type { JobProgress, JobRecord, JobSettings } from './job.js';
import type { EtaEstimator } from './eta.js';
import { JobFinisher } from './job-finisher.js';
import type { JobHost, JobQueue } from './job-queue.js';
import type { JobStore } from './job-store.js';
import { LocalQueue } from './local-queue.js';

export class QueueFullError extends Error {
  constructor(max: number) {
    super(`the queue is full (${max} jobs waiting); try again when some have finished`);
    this.name = 'QueueFullError';
  }
}

export class JobBusyError extends Error {}

/** The job folders hold as much as the server was told to keep (--job-storage). */
export class StorageFullError extends Error {
  constructor(limit: number, used: number) {
    const gb = (b: number) => `${(b / 1e9).toFixed(b < 1e8 ? 3 : 1)} GB`;
    super(`the server keeps at most ${gb(limit)} of jobs and holds ${gb(used)}; delete old jobs from your history and try again`);
    this.name = 'StorageFullError';
  }
}

function failureMessage(err: unknown): string {
  if (err instanceof DiskFullError) return err.onServer().message;
  return isNoSpace(err) ? new DiskFullError("the job's files", 'server').message : (err as Error).message;
}

export interface JobServiceEvents {
  update: [JobRecord];
  preview: [string, string];
  removed: [JobRecord];
}

/** How a new job relates to earlier ones (shown in the history) and who made it. */
export type JobLinks = Pick<JobRecord, 'rerunOf' | 'continues' | 'owner'>;

export interface JobServiceOptions {
  store: JobStore;
  /** This server's own workers, fed by the in-process FIFO (unless `queue` is given). */
  workers?: WorkerPool;
  /** Another queue than the in-process FIFO (the BullMQ one, server/queue/redis-queue.ts). */
  queue?: (host: JobHost) => JobQueue;
  saveDir?: string;
  maxQueue?: number;
  saveRetry?: { attempts: number; delayMs: number };
  /** Adds the time left for the whole job to its progress, and learns from finished jobs. */
  eta?: EtaEstimator;
  /** Bytes all job folders (inputs included) may hold; a new job that would pass it is refused. */
  storageBytes?: number;
  /** Ended jobs kept; older ones are deleted with their files (copies in the save folder stay). */
  keepJobs?: number;
}

export class JobService extends EventEmitter<JobServiceEvents> implements JobHost {
  /** Each running job's latest preview, for a page that starts watching it mid-job (after a reload). */
  private readonly previews = new Map<string, string>();
  closing = false;
  readonly finisher: JobFinisher;
  readonly maxQueue: number;
  readonly queue: JobQueue;

  constructor(private readonly opts: JobServiceOptions) {
    super();
    this.maxQueue = opts.maxQueue ?? 20;
    this.finisher = new JobFinisher({
      store: opts.store,
      saveDir: opts.saveDir,
      saveRetry: opts.saveRetry,
      maxEncodes: Math.max(1, opts.workers?.workers.length ?? 1),
      onSaved: (job) => this.emit('update', job),
    });
    if (opts.queue) this.queue = opts.queue(this);
    else if (opts.workers) this.queue = new LocalQueue(this, opts.workers);
    else throw new Error('a job service needs workers or a queue');
  }

  get store() {
    return this.opts.store;
  }

  get eta() {
    return this.opts.eta;
  }

  get queueLength() {
    return this.queue.waiting;
  }

  /** The longest-running job, if any. */
  get runningId(): string | undefined {
    return this.queue.runningId;
  }

  /** The latest preview of a running job, if it has one yet. */
  lastPreview(id: string): string | undefined {
    return this.previews.get(id);
  }

  /** 1 for the next job to run; 0 when running or not queued. */
  position(id: string): number {
    return this.queue.position(id);
  }

  /**
   * Queues the job, or with `settings.variations` N > 1 one job per variation with seeds seed,
   * seed + 1, … (a random first seed when none is given), each an ordinary job of one video.
   */
  submit(input: { png: Uint8Array; original?: { name: string; data: Uint8Array } }, settings: JobSettings, links: JobLinks = {}): JobRecord[] {
    const n = settings.variations;
    if (this.queue.waiting + n > this.maxQueue) throw new QueueFullError(this.maxQueue);
    // Inputs count too: cancelled and failed jobs keep theirs, so the queue limit alone bounds nothing on disk.
    const incoming = n * (input.png.byteLength + (input.original?.data.byteLength ?? 0));
    const limit = this.opts.storageBytes;
    if (limit !== undefined && this.store.usedBytes + incoming > limit) throw new StorageFullError(limit, this.store.usedBytes);
    const first = n > 1 ? (settings.seed ?? randomSeed()) : settings.seed;
    const jobs: JobRecord[] = [];
    for (let k = 0; k < n; k++) {
      const id = this.store.newId();
      const variation = n > 1 ? { group: jobs[0]?.id ?? id, index: k + 1, of: n } : undefined;
      const own: JobSettings = { ...settings, variations: 1, ...(first !== undefined ? { seed: first + k } : {}) };
      const job: JobRecord = { id, status: 'queued', createdAt: new Date().toISOString(), settings: own, videos: {}, inputName: 'input.png', ...links, ...(variation ? { variation } : {}) };
      const files: Record<string, Uint8Array> = { 'input.png': input.png };
      if (input.original) files[input.original.name] = input.original.data;
      this.store.create(job, files);
      const why = [links.rerunOf && `re-run of ${links.rerunOf}`, links.continues && `continues ${links.continues}`, variation && `variation ${variation.index}/${n} of ${variation.group}`].filter(
        Boolean,
      );
      this.store.log(id, `queued${why.length ? ` (${why.join(', ')})` : ''} with settings ${JSON.stringify(own)}`);
      this.queue.add(job);
      jobs.push(job);
    }
    return jobs;
  }

  /** Cancels a queued or running job; false if it had already ended. */
  cancel(id: string): boolean {
    const job = this.store.get(id);
    if (!job || (job.status !== 'queued' && job.status !== 'running')) return false;
    return this.queue.cancel(job);
  }

  announceQueued(ids: readonly string[], from = 0): void {
    for (let i = from; i < ids.length; i++) {
      const job = this.store.get(ids[i]!);
      if (!job) continue;
      const ahead = ids.slice(0, i).flatMap((id) => this.store.get(id) ?? []);
      this.setProgress(job, { stage: 'queued', position: i + 1, ...this.opts.eta?.queued(ahead, job) }, false);
    }
  }

  preview(id: string, url: string): void {
    this.previews.set(id, url);
    this.emit('preview', id, url);
  }

  failureMessage(err: unknown): string {
    return failureMessage(err);
  }

  /**
   * Deletes an ended job: its folder and every file in it (copies in the save folder stay).
   * Throws JobBusyError while it is queued, running or being saved.
   */
  remove(id: string): void {
    const job = this.store.get(id);
    if (!job) return;
    if (job.status === 'queued' || job.status === 'running') throw new JobBusyError(`job ${id} is ${job.status}; cancel it first, then delete it`);
    if (job.saved?.status === 'pending') throw new JobBusyError(`job ${id} is still being copied to the save folder; delete it when that is done`);
    this.store.remove(id);
    this.emit('removed', job);
  }

  setProgress(job: JobRecord, progress: JobProgress, persist = true) {
    job.progress = this.opts.eta?.annotate(job, progress) ?? progress;
    if (persist) this.store.save(job);
    this.emit('update', job);
  }

  finish(job: JobRecord, status: Exclude<JobRecord['status'], 'queued' | 'running'>, error?: string) {
    this.previews.delete(job.id);
    job.status = status;
    job.finishedAt = new Date().toISOString();
    job.error = error;
    job.progress = status === 'done' ? { stage: 'done' } : undefined;
    this.opts.eta?.finish(job);
    this.finisher.trySave(job);
    this.store.log(job.id, error ? `${status}: ${error}` : status);
    this.store.measure(job.id);
    this.emit('update', job);
    this.prune();
    if (status === 'done' && job.settings.saveToFolder && this.finisher.savesTo) this.finisher.save(job);
  }

  /**
   * Deletes the oldest ended jobs beyond --keep-jobs (never one still being saved); returns how
   * many went.
   */
  prune(): number {
    const keep = this.opts.keepJobs;
    if (keep === undefined) return 0;
    const ended = this.store.list().filter((j) => j.status !== 'queued' && j.status !== 'running' && j.saved?.status !== 'pending');
    let removed = 0;
    for (const job of ended.slice(keep)) {
      this.store.remove(job.id);
      this.emit('removed', job);
      removed++;
    }
    return removed;
  }

  /** After a restart: saves the last run left pending are made again, or reported when no folder is set. */
  resumeSaves(): void {
    this.finisher.resumeSaves();
  }

  /** For tests and shutdown: resolves when background saves are done. */
  async idle(): Promise<void> {
    await this.finisher.idle();
  }

  /** Shutdown: no job starts or changes any more. */
  async close(): Promise<void> {
    this.closing = true;
    await this.queue.close();
  }
}

// The job service: a FIFO queue in front of the inference workers (one per GPU), handing each job
// to the first free worker, persisting every state change to the job's folder and announcing it
// to listeners. The generation itself runs in the worker process; the finisher (job-finisher.ts)
// encodes and saves the videos.
import { EventEmitter } from 'node:events';
import { randomSeed } from '../../models/pipeline/random.js';
import type { InferenceWorker, WorkerPool } from '../workers/pool.js';
import { DiskFullError, isNoSpace } from '../../media/disk-full.js';
import type { JobProgress, JobRecord, JobSettings } from './job.js';
import type { EtaEstimator } from './eta.js';
import { FRAMES_FILE, JobFinisher } from './job-finisher.js';
import type { JobStore } from './job-store.js';

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
  workers: WorkerPool;
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

export class JobService extends EventEmitter<JobServiceEvents> {
  private readonly queue: string[] = [];
  /** Jobs started and not yet finished (in a worker, or being encoded), in start order. */
  private readonly running = new Map<string, AbortController>();
  /** Each running job's latest preview, for a page that starts watching it mid-job (after a reload). */
  private readonly previews = new Map<string, string>();
  private closing = false;
  private readonly finisher: JobFinisher;
  readonly maxQueue: number;

  constructor(private readonly opts: JobServiceOptions) {
    super();
    this.maxQueue = opts.maxQueue ?? 20;
    this.finisher = new JobFinisher({
      store: opts.store,
      saveDir: opts.saveDir,
      saveRetry: opts.saveRetry,
      maxEncodes: Math.max(1, opts.workers.workers.length),
      onSaved: (job) => this.emit('update', job),
    });
    opts.workers.on('free', () => this.pump());
  }

  get store() {
    return this.opts.store;
  }

  get queueLength() {
    return this.queue.length;
  }

  /** The longest-running job, if any. */
  get runningId(): string | undefined {
    return this.running.keys().next().value;
  }

  /** The latest preview of a running job, if it has one yet. */
  lastPreview(id: string): string | undefined {
    return this.previews.get(id);
  }

  /** 1 for the next job to run; 0 when running or not queued. */
  position(id: string): number {
    return this.queue.indexOf(id) + 1;
  }

  /**
   * Queues the job, or with `settings.variations` N > 1 one job per variation with seeds seed,
   * seed + 1, … (a random first seed when none is given), each an ordinary job of one video.
   */
  submit(input: { png: Uint8Array; original?: { name: string; data: Uint8Array } }, settings: JobSettings, links: JobLinks = {}): JobRecord[] {
    const n = settings.variations;
    if (this.queue.length + n > this.maxQueue) throw new QueueFullError(this.maxQueue);
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
      this.queue.push(id);
      this.setProgress(job, this.queuedAt(this.queue.length - 1), false);
      jobs.push(job);
    }
    this.pump();
    return jobs;
  }

  /** Cancels a queued or running job; false if it had already ended. */
  cancel(id: string): boolean {
    const job = this.store.get(id);
    if (!job) return false;
    const i = this.queue.indexOf(id);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.finish(job, 'cancelled');
      this.announcePositions();
      return true;
    }
    const running = this.running.get(id);
    if (running) {
      running.abort();
      return true;
    }
    return false;
  }

  /** A queued job's progress: its place, and when the estimator has one, its wait. */
  private queuedAt(index: number): JobProgress {
    const job = this.store.get(this.queue[index]!)!;
    const ahead = this.queue.slice(0, index).flatMap((id) => this.store.get(id) ?? []);
    return { stage: 'queued', position: index + 1, ...this.opts.eta?.queued(ahead, job) };
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

  private setProgress(job: JobRecord, progress: JobProgress, persist = true) {
    job.progress = this.opts.eta?.annotate(job, progress) ?? progress;
    if (persist) this.store.save(job);
    this.emit('update', job);
  }

  private finish(job: JobRecord, status: JobRecord['status'], error?: string) {
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

  private announcePositions() {
    this.queue.forEach((qid, i) => {
      const job = this.store.get(qid);
      if (job) this.setProgress(job, this.queuedAt(i), false);
    });
  }

  /** Hands queued jobs, oldest first, to free workers until either runs out. */
  private pump(): void {
    if (this.closing) return;
    let started = false;
    while (this.queue.length) {
      const job = this.store.get(this.queue[0]!)!;
      const worker = this.opts.workers.firstFree(job.settings.model);
      if (!worker) break;
      this.queue.shift();
      const controller = new AbortController();
      this.running.set(job.id, controller);
      started = true;
      this.run(job, worker, controller.signal)
        .catch((err) => {
          // Only a write of the job's own record before its run began gets here.
          if (job.status === 'running') this.finish(job, 'failed', failureMessage(err));
          else console.error(`job ${job.id}: ${(err as Error).message}`);
        })
        .finally(() => this.running.delete(job.id));
    }
    if (started) this.announcePositions();
  }

  private async run(job: JobRecord, worker: InferenceWorker, signal: AbortSignal) {
    job.status = 'running';
    job.startedAt = new Date().toISOString();
    this.opts.eta?.start(job);
    this.store.log(job.id, `started on ${worker.name}`);
    this.setProgress(job, { stage: 'loading', message: worker.waitingNote });
    const s = job.settings;
    const framesPath = this.store.file(job.id, FRAMES_FILE);
    // Progress arrives from the worker's messages, outside this try: a record that cannot be
    // written (a full disk) stops the job here instead of escaping as an uncaught error.
    let recordError: unknown;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await worker.run(
        { jobId: job.id, model: s.model, imagePath: this.store.file(job.id, job.inputName), framesPath, settings: s },
        {
          progress: (e) => {
            if (recordError) return;
            try {
              this.setProgress(job, e, e.stage !== 'sampling' && e.stage !== 'loading');
            } catch (err) {
              recordError = err;
              stop.abort();
            }
          },
          preview: (url) => {
            this.previews.set(job.id, url);
            this.emit('preview', job.id, url);
          },
        },
        stop.signal,
      );
      if (recordError) throw recordError;
      job.seed = result.seed;
      if (result.seeds) job.seeds = result.seeds;
      job.provider = result.provider;
      job.timings = { totalMs: Math.round(result.totalMs) };
      this.setProgress(job, { stage: 'writing', message: 'writing video files' });
      await this.finisher.encode(
        job,
        result,
        signal,
        () => this.setProgress(job, { stage: 'writing', message: 'waiting for another job to finish writing its video' }, false),
        (format) => this.setProgress(job, { stage: 'writing', message: `writing video.${format}`, format }, false),
      );
      this.finish(job, 'done');
      if (s.saveToFolder && this.finisher.savesTo) this.finisher.save(job);
    } catch (err) {
      // Gone before the job is announced as ended, so no one ever sees it beside a result.
      await this.finisher.removeFrames(job);
      // Shutting down: the job stays running on disk and the next start marks it interrupted.
      if (this.closing) return;
      if (recordError) this.finish(job, 'failed', failureMessage(recordError));
      else if (signal.aborted) this.finish(job, 'cancelled');
      else this.finish(job, 'failed', failureMessage(err));
    } finally {
      this.previews.delete(job.id);
      signal.removeEventListener('abort', onAbort);
    }
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
  close(): void {
    this.closing = true;
  }
}

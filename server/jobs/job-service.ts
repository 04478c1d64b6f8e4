// The job service: a FIFO queue in front of the inference workers (one per GPU), handing each job
// to the first free worker, persisting every state change to the job's folder and announcing it
// to listeners. The generation itself runs in the worker process; the videos are encoded here.
import { EventEmitter } from 'node:events';
import { readFile, rm } from 'node:fs/promises';
import sharp from 'sharp';
import { randomSeed } from '../../models/pipeline/random.js';
import { arrangeFrames, encodeVideo } from '../../media/ffmpeg.js';
import { saveNumbered } from '../save-folder.js';
import type { InferenceWorker, WorkerPool } from '../workers/pool.js';
import { DiskFullError, isNoSpace } from '../disk-full.js';
import type { JobProgress, JobRecord, JobSettings } from './job.js';
import { writeFileAtomic, type JobStore } from './job-store.js';

export class QueueFullError extends Error {
  constructor(max: number) {
    super(`the queue is full (${max} jobs waiting); try again when some have finished`);
    this.name = 'QueueFullError';
  }
}

function failureMessage(err: unknown): string {
  return isNoSpace(err) ? new DiskFullError("the job's files").message : (err as Error).message;
}

export interface JobServiceEvents {
  update: [JobRecord];
  preview: [string, string];
}

/** Where a worker leaves a job's raw frames for the encoder (removed once the videos are written). */
const FRAMES_FILE = '.frames.rgb.tmp';

/** A finished job's last frame at the job's size: the input of a job that continues it. */
export const LAST_FRAME_FILE = 'last-frame.png';

/** How a new job relates to earlier ones (shown in the history). */
export type JobLinks = Pick<JobRecord, 'rerunOf' | 'continues'>;

export interface JobServiceOptions {
  store: JobStore;
  workers: WorkerPool;
  saveDir?: string;
  maxQueue?: number;
  saveRetry?: { attempts: number; delayMs: number };
}

export class JobService extends EventEmitter<JobServiceEvents> {
  private readonly queue: string[] = [];
  /** Jobs started and not yet finished (in a worker, or being encoded), in start order. */
  private readonly running = new Map<string, AbortController>();
  private saving: Promise<unknown> = Promise.resolve();
  private closing = false;
  readonly maxQueue: number;

  constructor(private readonly opts: JobServiceOptions) {
    super();
    this.maxQueue = opts.maxQueue ?? 20;
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
      this.setProgress(job, { stage: 'queued', position: this.queue.length }, false);
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

  private setProgress(job: JobRecord, progress: JobProgress, persist = true) {
    job.progress = progress;
    if (persist) this.store.save(job);
    this.emit('update', job);
  }

  private finish(job: JobRecord, status: JobRecord['status'], error?: string) {
    job.status = status;
    job.finishedAt = new Date().toISOString();
    job.error = error;
    job.progress = status === 'done' ? { stage: 'done' } : undefined;
    this.trySave(job);
    this.store.log(job.id, error ? `${status}: ${error}` : status);
    this.emit('update', job);
  }

  /** For end states: the record in memory is right even when the disk cannot take it. */
  private trySave(job: JobRecord) {
    try {
      this.store.save(job);
    } catch (err) {
      console.error(`job ${job.id}: could not write job.json (${(err as Error).message})`);
    }
  }

  private announcePositions() {
    this.queue.forEach((qid, i) => {
      const job = this.store.get(qid);
      if (job) this.setProgress(job, { stage: 'queued', position: i + 1 }, false);
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
    this.store.log(job.id, `started on ${worker.name}`);
    this.setProgress(job, { stage: 'loading', message: worker.waitingNote });
    const s = job.settings;
    const framesPath = this.store.file(job.id, FRAMES_FILE);
    // Gone before the job is announced as ended, so no one ever sees it beside a result.
    const removeFrames = () => rm(framesPath, { force: true }).catch(() => {});
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
          preview: (url) => this.emit('preview', job.id, url),
        },
        stop.signal,
      );
      if (recordError) throw recordError;
      job.seed = result.seed;
      if (result.seeds) job.seeds = result.seeds;
      job.provider = result.provider;
      job.timings = { totalMs: Math.round(result.totalMs) };
      this.setProgress(job, { stage: 'writing', message: 'writing video files' });
      const rgb = new Uint8Array(
        await readFile(framesPath).catch((err: Error) => {
          throw new Error(`the frames the worker wrote could not be read: ${err.message}`);
        }),
      );
      const frameBytes = result.width * result.height * 3;
      const last = await sharp(rgb.subarray((result.frameCount - 1) * frameBytes, result.frameCount * frameBytes), { raw: { width: result.width, height: result.height, channels: 3 } })
        .png()
        .toBuffer();
      writeFileAtomic(this.store.file(job.id, LAST_FRAME_FILE), last);
      const video = arrangeFrames({ rgb, frameCount: result.frameCount, width: result.width, height: result.height, fps: result.fps }, { pingPong: s.pingPong, loops: s.loops });
      for (const format of s.formats) {
        const name = `video.${format}`;
        await encodeVideo(video, this.store.file(job.id, name), format, signal);
        job.videos[format] = name;
      }
      writeFileAtomic(this.store.file(job.id, 'settings.json'), JSON.stringify({ ...s, seed: result.seed }, null, 2));
      await removeFrames();
      this.finish(job, 'done');
      if (s.saveToFolder && this.opts.saveDir) this.saveToFolder(job);
    } catch (err) {
      await removeFrames();
      // Shutting down: the job stays running on disk and the next start marks it interrupted.
      if (this.closing) return;
      if (recordError) this.finish(job, 'failed', failureMessage(recordError));
      else if (signal.aborted) this.finish(job, 'cancelled');
      else this.finish(job, 'failed', failureMessage(err));
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Copies the finished files to the save folder in the background, one job after another. */
  private saveToFolder(job: JobRecord) {
    const dir = this.opts.saveDir!;
    job.saved = { status: 'pending' };
    this.trySave(job);
    const files = [...Object.values(job.videos).map((n) => this.store.file(job.id, n!)), this.store.file(job.id, 'settings.json')];
    this.saving = this.saving.then(() =>
      saveNumbered(dir, files, this.opts.saveRetry)
        .then((r) => {
          job.saved = { status: 'saved', files: r.files };
          this.store.log(job.id, `saved to ${r.files.join(', ')}`);
        })
        .catch((err: Error) => {
          job.saved = { status: 'failed', error: `could not save to ${dir}: ${err.message}` };
          this.store.log(job.id, job.saved.error!);
        })
        .finally(() => {
          this.trySave(job);
          this.emit('update', job);
        }),
    );
  }

  /** After a restart: saves the last run left pending are made again, or reported when no folder is set. */
  resumeSaves(): void {
    for (const job of this.store.list().reverse()) {
      if (job.saved?.status !== 'pending') continue;
      this.store.log(job.id, 'saving again: the server stopped before the save finished');
      if (this.opts.saveDir) this.saveToFolder(job);
      else {
        job.saved = { status: 'failed', error: 'the server stopped before this job was saved, and no save folder is set now; download the video instead' };
        this.trySave(job);
      }
    }
  }

  /** For tests and shutdown: resolves when background saves are done. */
  async idle(): Promise<void> {
    await this.saving;
  }

  /** Shutdown: no job starts or changes any more. */
  close(): void {
    this.closing = true;
  }
}

// The job service: a FIFO queue in front of the machine's one GPU, running one generation at a
// time, persisting every state change to the job's folder and announcing it to listeners.
import { EventEmitter } from 'node:events';
import { GenerationCancelled, type SvdPipeline } from '../../models/pipeline/pipeline.js';
import { decodeImage, frameImage } from '../../models/pipeline/prepare-image.js';
import { arrangeFrames, encodeVideo } from '../media/ffmpeg.js';
import { latentPreview } from '../media/preview.js';
import { saveNumbered } from '../media/save-folder.js';
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

export interface JobServiceOptions {
  store: JobStore;
  /** The loaded pipeline for a model name (undefined: the default model); jobs wait for it. */
  pipeline: (model?: string) => Promise<SvdPipeline>;
  saveDir?: string;
  maxQueue?: number;
  saveRetry?: { attempts: number; delayMs: number };
}

export class JobService extends EventEmitter<JobServiceEvents> {
  private readonly queue: string[] = [];
  private running: { id: string; controller: AbortController } | undefined;
  private saving: Promise<unknown> = Promise.resolve();
  readonly maxQueue: number;

  constructor(private readonly opts: JobServiceOptions) {
    super();
    this.maxQueue = opts.maxQueue ?? 20;
  }

  get store() {
    return this.opts.store;
  }

  get queueLength() {
    return this.queue.length;
  }

  get runningId() {
    return this.running?.id;
  }

  /** 1 for the next job to run; 0 when running or not queued. */
  position(id: string): number {
    return this.queue.indexOf(id) + 1;
  }

  submit(input: { png: Uint8Array; original?: { name: string; data: Uint8Array } }, settings: JobSettings, rerunOf?: string): JobRecord {
    if (this.queue.length >= this.maxQueue) throw new QueueFullError(this.maxQueue);
    const id = this.store.newId();
    const job: JobRecord = { id, status: 'queued', createdAt: new Date().toISOString(), settings, videos: {}, inputName: 'input.png', rerunOf };
    const files: Record<string, Uint8Array> = { 'input.png': input.png };
    if (input.original) files[input.original.name] = input.original.data;
    this.store.create(job, files);
    this.store.log(id, `queued${rerunOf ? ` (re-run of ${rerunOf})` : ''} with settings ${JSON.stringify(settings)}`);
    this.queue.push(id);
    this.setProgress(job, { stage: 'queued', position: this.queue.length }, false);
    void this.pump();
    return job;
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
    if (this.running?.id === id) {
      this.running.controller.abort();
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

  private async pump(): Promise<void> {
    if (this.running) return;
    const id = this.queue.shift();
    if (!id) return;
    const job = this.store.get(id)!;
    const controller = new AbortController();
    this.running = { id, controller };
    this.announcePositions();
    try {
      await this.run(job, controller.signal);
    } catch (err) {
      // Only a write of the job's own record before its run began gets here.
      if (job.status === 'running') this.finish(job, 'failed', failureMessage(err));
    } finally {
      this.running = undefined;
      void this.pump();
    }
  }

  private async run(job: JobRecord, signal: AbortSignal) {
    job.status = 'running';
    job.startedAt = new Date().toISOString();
    this.setProgress(job, { stage: 'loading', message: 'waiting for the model' });
    try {
      const pipeline = await this.opts.pipeline(job.settings.model);
      const s = job.settings;
      const image = await frameImage(await decodeImage(this.store.file(job.id, job.inputName)), { width: s.width, height: s.height, mode: s.resize, x: s.cropX, y: s.cropY });
      let previewBusy = false;
      const result = await pipeline.generate(image, s, {
        signal,
        onProgress: (e) => {
          if (e.stage === 'done') return;
          if (e.stage === 'loading') this.setProgress(job, { stage: 'loading', message: e.message }, false);
          else this.setProgress(job, e, e.stage !== 'sampling');
        },
        onPreview: (latents, dims) => {
          if (previewBusy) return;
          previewBusy = true;
          latentPreview(latents, dims)
            .then((url) => this.emit('preview', job.id, url))
            .catch(() => {})
            .finally(() => (previewBusy = false));
        },
      });
      job.seed = result.seed;
      job.provider = `${result.provider} (${result.dtype})`;
      job.timings = { totalMs: Math.round(result.timings.totalMs) };
      this.setProgress(job, { stage: 'writing', message: 'writing video files' });
      const video = arrangeFrames(result, { pingPong: s.pingPong, loops: s.loops });
      for (const format of s.formats) {
        const name = `video.${format}`;
        await encodeVideo(video, this.store.file(job.id, name), format, signal);
        job.videos[format] = name;
      }
      writeFileAtomic(this.store.file(job.id, 'settings.json'), JSON.stringify({ ...s, seed: result.seed }, null, 2));
      this.finish(job, 'done');
      if (s.saveToFolder && this.opts.saveDir) this.saveToFolder(job);
    } catch (err) {
      if (err instanceof GenerationCancelled || signal.aborted) this.finish(job, 'cancelled');
      else this.finish(job, 'failed', failureMessage(err));
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
}

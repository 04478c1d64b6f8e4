// The in-process queue: a FIFO in front of this server's own inference workers (one per GPU),
// handing each job to the first free worker; the finisher (job-finisher.ts) encodes the frames
// the worker wrote into the job's folder.
import type { InferenceWorker, WorkerPool } from '../workers/pool.js';
import { FRAMES_FILE } from './job-finisher.js';
import type { JobHost, JobQueue } from './job-queue.js';
import type { JobRecord } from './job.js';

export class LocalQueue implements JobQueue {
  private readonly queue: string[] = [];
  /** Jobs started and not yet finished (in a worker, or being encoded), in start order. */
  private readonly running = new Map<string, AbortController>();

  constructor(
    private readonly host: JobHost,
    private readonly workers: WorkerPool,
  ) {
    workers.on('free', () => this.pump());
  }

  get waiting() {
    return this.queue.length;
  }

  get runningId(): string | undefined {
    return this.running.keys().next().value;
  }

  position(id: string): number {
    return this.queue.indexOf(id) + 1;
  }

  add(job: JobRecord): void {
    this.queue.push(job.id);
    this.host.announceQueued(this.queue, this.queue.length - 1);
    this.pump();
  }

  cancel(job: JobRecord): boolean {
    const i = this.queue.indexOf(job.id);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.host.finish(job, 'cancelled');
      this.host.announceQueued(this.queue);
      return true;
    }
    const running = this.running.get(job.id);
    if (running) {
      running.abort();
      return true;
    }
    return false;
  }

  async close(): Promise<void> {}

  /** Hands queued jobs, oldest first, to free workers until either runs out. */
  private pump(): void {
    if (this.host.closing) return;
    let started = false;
    while (this.queue.length) {
      const job = this.host.store.get(this.queue[0]!)!;
      const worker = this.workers.firstFree(job.settings.model);
      if (!worker) break;
      this.queue.shift();
      const controller = new AbortController();
      this.running.set(job.id, controller);
      started = true;
      this.run(job, worker, controller.signal)
        .catch((err) => {
          // Only a write of the job's own record before its run began gets here.
          if (job.status === 'running') this.host.finish(job, 'failed', this.host.failureMessage(err));
          else console.error(`job ${job.id}: ${(err as Error).message}`);
        })
        .finally(() => this.running.delete(job.id));
    }
    if (started) this.host.announceQueued(this.queue);
  }

  private async run(job: JobRecord, worker: InferenceWorker, signal: AbortSignal) {
    const { host } = this;
    const { finisher } = host;
    job.status = 'running';
    job.startedAt = new Date().toISOString();
    host.eta?.start(job);
    host.store.log(job.id, `started on ${worker.name}`);
    host.setProgress(job, { stage: 'loading', message: worker.waitingNote });
    const s = job.settings;
    const framesPath = host.store.file(job.id, FRAMES_FILE);
    // Progress arrives from the worker's messages, outside this try: a record that cannot be
    // written (a full disk) stops the job here instead of escaping as an uncaught error.
    let recordError: unknown;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await worker.run(
        { jobId: job.id, model: s.model, imagePath: host.store.file(job.id, job.inputName), framesPath, settings: s },
        {
          progress: (e) => {
            if (recordError) return;
            try {
              host.setProgress(job, e, e.stage !== 'sampling' && e.stage !== 'loading');
            } catch (err) {
              recordError = err;
              stop.abort();
            }
          },
          preview: (url) => host.preview(job.id, url),
        },
        stop.signal,
      );
      if (recordError) throw recordError;
      job.seed = result.seed;
      if (result.seeds) job.seeds = result.seeds;
      job.provider = result.provider;
      job.timings = { totalMs: Math.round(result.totalMs) };
      host.setProgress(job, { stage: 'writing', message: 'writing video files' });
      await finisher.encode(
        job,
        result,
        signal,
        () => host.setProgress(job, { stage: 'writing', message: 'waiting for another job to finish writing its video' }, false),
        (format) => host.setProgress(job, { stage: 'writing', message: `writing video.${format}`, format }, false),
      );
      host.finish(job, 'done');
    } catch (err) {
      // Gone before the job is announced as ended, so no one ever sees it beside a result.
      await finisher.removeFrames(job);
      // Shutting down: the job stays running on disk and the next start marks it interrupted.
      if (host.closing) return;
      if (recordError) host.finish(job, 'failed', host.failureMessage(recordError));
      else if (signal.aborted) host.finish(job, 'cancelled');
      else host.finish(job, 'failed', host.failureMessage(err));
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}

// What happens to a job after the worker has made its frames: the videos are encoded and checked
// (media/ffmpeg.ts verifies each with ffprobe), its settings written beside them, and, when asked,
// copies made in the save folder. Encodes are bounded: a worker takes its next job as soon as it
// has handed over its frames, so without a bound a fast queue piles up encodes (each an ffmpeg
// process and a copy of every frame in memory).
import { readFile, rm } from 'node:fs/promises';
import sharp from 'sharp';
import { arrangeFrames, encodeVideo } from '../../media/ffmpeg.js';
import { saveNumbered } from '../save-folder.js';
import type { JobRecord } from './job.js';
import type { VideoFormat } from '../../common/video-formats.js';
import { writeFileAtomic, type JobStore } from './job-store.js';

/** Where a worker leaves a job's raw frames for the encoder (removed once the videos are written). */
export const FRAMES_FILE = '.frames.rgb.tmp';

/** A finished job's last frame at the job's size: the input of a job that continues it. */
export const LAST_FRAME_FILE = 'last-frame.png';

/** At most `limit` tasks at once; the rest wait their turn in order. */
class Bound {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly limit: number) {}

  get full(): boolean {
    return this.active >= this.limit;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((go) => this.waiting.push(go));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export interface FramesResult {
  frameCount: number;
  width: number;
  height: number;
  fps: number;
  seed: number;
}

export interface JobFinisherOptions {
  store: JobStore;
  saveDir?: string;
  saveRetry?: { attempts: number; delayMs: number };
  /** Encodes at once (default 1; the service gives one per worker). */
  maxEncodes?: number;
  /** Hears about a job whose save state changed in the background. */
  onSaved: (job: JobRecord) => void;
}

export class JobFinisher {
  private readonly encodes: Bound;
  private saving: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: JobFinisherOptions) {
    this.encodes = new Bound(opts.maxEncodes ?? 1);
  }

  private get store() {
    return this.opts.store;
  }

  /** Removes the worker's frames; safe to call when there are none. */
  removeFrames(job: JobRecord): Promise<void> {
    return rm(this.store.file(job.id, FRAMES_FILE), { force: true }).catch(() => {});
  }

  /**
   * Writes every video the job asked for from the worker's frames (and its last frame, for
   * continuing it), then its settings.json.
   * `waiting` is called when the job has to wait for another job's encode first.
   */
  /** `writing` hears of each format as its encode begins (the ETA times them apart). */
  async encode(job: JobRecord, result: FramesResult, signal: AbortSignal, waiting: () => void, writing?: (format: VideoFormat) => void): Promise<void> {
    const s = job.settings;
    if (this.encodes.full) waiting();
    await this.encodes.run(async () => {
      signal.throwIfAborted();
      const rgb = new Uint8Array(
        await readFile(this.store.file(job.id, FRAMES_FILE)).catch((err: Error) => {
          throw new Error(`the frames the worker wrote could not be read: ${err.message}`);
        }),
      );
      const frameBytes = result.width * result.height * 3;
      const last = rgb.subarray((result.frameCount - 1) * frameBytes, result.frameCount * frameBytes);
      writeFileAtomic(
        this.store.file(job.id, LAST_FRAME_FILE),
        await sharp(last, { raw: { width: result.width, height: result.height, channels: 3 } })
          .png()
          .toBuffer(),
      );
      const video = arrangeFrames({ rgb, frameCount: result.frameCount, width: result.width, height: result.height, fps: result.fps }, { pingPong: s.pingPong, loops: s.loops });
      for (const format of s.formats) {
        const name = `video.${format}`;
        writing?.(format);
        await encodeVideo(video, this.store.file(job.id, name), format, signal);
        job.videos[format] = name;
      }
    });
    writeFileAtomic(this.store.file(job.id, 'settings.json'), JSON.stringify({ ...s, seed: result.seed }, null, 2));
    await this.removeFrames(job);
  }

  /** Whether finished jobs are copied anywhere. */
  get savesTo(): string | undefined {
    return this.opts.saveDir;
  }

  /** Copies the finished files to the save folder in the background, one job after another. */
  save(job: JobRecord): void {
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
          this.opts.onSaved(job);
        }),
    );
  }

  /** After a restart: saves the last run left pending are made again, or reported when no folder is set. */
  resumeSaves(): void {
    for (const job of this.store.list().reverse()) {
      if (job.saved?.status !== 'pending') continue;
      this.store.log(job.id, 'saving again: the server stopped before the save finished');
      if (this.opts.saveDir) this.save(job);
      else {
        job.saved = { status: 'failed', error: 'the server stopped before this job was saved, and no save folder is set now; download the video instead' };
        this.trySave(job);
      }
    }
  }

  /** For end states: the record in memory is right even when the disk cannot take it. */
  trySave(job: JobRecord): void {
    try {
      this.store.save(job);
    } catch (err) {
      console.error(`job ${job.id}: could not write job.json (${(err as Error).message})`);
    }
  }

  /** Resolves when background saves are done. */
  async idle(): Promise<void> {
    await this.saving;
  }
}

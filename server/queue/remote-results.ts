// A worker box's finished videos, as the front server takes them: only from the box that holds the
// job's lock, exactly the formats the job asked for, each checked with ffprobe for the frames and
// duration its settings make (as a local encode is checked), then moved into the job's folder
// under the name it will keep; a job is listed as done only when all of that succeeded. The last
// frame (what a continuation starts from) is kept only when it is a whole PNG of the job's size;
// one that is not is refused on its own: the videos are the user's and stay.
import { linkSync, rmSync, statSync } from 'node:fs';
import sharp from 'sharp';
import { arrangedFrameCount, verifyVideo } from '../../media/ffmpeg.js';
import { LAST_FRAME_FILE } from '../jobs/job-finisher.js';
import { writeFileAtomic } from '../jobs/job-store.js';
import type { JobHost } from '../jobs/job-queue.js';
import type { VideoFormat } from '../../common/video-formats.js';
import { LAST_FRAME_FIELD, type BoxResult } from './redis-link.js';
import { ClaimError, type RedisQueue } from './redis-queue.js';

/** A refusal of what the box sent (a video that is not what the job asked for): the box fails the job with it. */
export class ResultRejected extends Error {}

/** The largest a PNG of width x height can be: 16-bit RGBA stored uncompressed, and room for its other chunks. */
const maxPngBytes = (width: number, height: number) => height * (width * 8 + 1) + 2 ** 20;

/** Why the last frame at `path` cannot be kept (not a whole PNG of the job's size), or undefined when it can. */
async function lastFrameProblem(path: string | undefined, width: number, height: number, box: string): Promise<string | undefined> {
  if (!path) return `${box} sent no last frame (field "${LAST_FRAME_FIELD}"; is the box the same version as the front server?)`;
  const bytes = statSync(path).size;
  if (bytes > maxPngBytes(width, height)) return `the last frame ${box} sent is ${(bytes / 2 ** 20).toFixed(1)} MB, more than a ${width}x${height} PNG can be`;
  const image = sharp(path);
  const header = await image.metadata().catch(() => undefined);
  if (header?.format !== 'png') return `the last frame ${box} sent is not a PNG`;
  if (header.width !== width || header.height !== height) return `the last frame ${box} sent is ${header.width}x${header.height}, not the job's ${width}x${height}`;
  // The header can be whole and the pixels cut off: only decoding it all tells.
  const damage = await image
    .raw()
    .toBuffer()
    .then(
      () => undefined,
      (err: Error) => err.message,
    );
  return damage && `the last frame ${box} sent is a damaged PNG (${damage})`;
}

/**
 * `uploads`: each uploaded format's temporary path in the job's folder, and the last frame's
 * (removed here, kept or not). Resolves with why the last frame was not kept, if it was not.
 */
export async function receiveResult(
  host: JobHost,
  queue: RedisQueue,
  id: string,
  lock: string,
  box: string,
  uploads: Map<VideoFormat | typeof LAST_FRAME_FIELD, string>,
  result: BoxResult,
): Promise<{ lastFrameRefused?: string }> {
  try {
    const job = queue.jobForBox(id);
    const asked = job.settings.formats;
    const files = new Map([...uploads].filter((e): e is [VideoFormat, string] => e[0] !== LAST_FRAME_FIELD));
    const lastFrame = uploads.get(LAST_FRAME_FIELD);
    const sent = [...files.keys()];
    if (sent.length !== asked.length || !asked.every((f) => files.has(f))) {
      throw new ResultRejected(`the job asked for ${asked.join(', ')}; ${box} sent ${sent.join(', ') || 'no video'}`);
    }
    const frameCount = arrangedFrameCount(result.frameCount, job.settings);
    for (const [format, path] of files) {
      await verifyVideo(path, { frameCount, fps: result.fps }, `video.${format} from ${box}`, 'received').catch((err: Error) => {
        throw new ResultRejected(err.message);
      });
    }
    // The frame a continuation starts from: a PNG at the job's size, as a local job keeps it.
    const lastFrameRefused = await lastFrameProblem(lastFrame, job.settings.width, job.settings.height, box);
    // Last: the lock, so a box whose job went to another while it uploaded cannot list it too.
    if (!(await queue.holds(id, lock))) throw new ClaimError(409, `job ${id} is no longer held by ${box}; another box has it`);
    queue.jobForBox(id);
    for (const [format, path] of files) {
      const name = `video.${format}`;
      linkSync(path, host.store.file(id, name));
      job.videos[format] = name;
    }
    if (lastFrameRefused) host.store.log(id, `${lastFrameRefused}: not kept; the videos are, but this job cannot be continued`);
    else linkSync(lastFrame!, host.store.file(id, LAST_FRAME_FILE));
    job.seed = result.seed;
    if (result.seeds) job.seeds = result.seeds;
    job.provider = result.provider;
    job.timings = { totalMs: Math.round(result.totalMs) };
    writeFileAtomic(host.store.file(id, 'settings.json'), JSON.stringify({ ...job.settings, seed: result.seed }, null, 2));
    host.store.log(id, `videos received from ${box} and checked`);
    host.finish(job, 'done');
    return lastFrameRefused ? { lastFrameRefused } : {};
  } finally {
    for (const path of uploads.values()) rmSync(path, { force: true });
  }
}

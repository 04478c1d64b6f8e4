// A worker box's finished videos, as the front server takes them: only from the box that holds the
// job's lock, exactly the formats the job asked for, each checked with ffprobe for the frames and
// duration its settings make (as a local encode is checked), then moved into the job's folder
// under the name it will keep; a job is listed as done only when all of that succeeded.
import { linkSync, rmSync } from 'node:fs';
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

/**
 * `uploads`: each uploaded format's temporary path in the job's folder, and the last frame's
 * (removed here, kept or not).
 */
export async function receiveResult(
  host: JobHost,
  queue: RedisQueue,
  id: string,
  lock: string,
  box: string,
  uploads: Map<VideoFormat | typeof LAST_FRAME_FIELD, string>,
  result: BoxResult,
): Promise<void> {
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
      await verifyVideo(path, { frameCount, fps: result.fps }, `video.${format} from ${box}`).catch((err: Error) => {
        throw new ResultRejected(err.message);
      });
    }
    // The frame a continuation starts from: a PNG at the job's size, as a local job keeps it.
    if (!lastFrame) throw new ResultRejected(`${box} sent no last frame (field "${LAST_FRAME_FIELD}"); is the box the same version as the front server?`);
    const frame = await sharp(lastFrame)
      .metadata()
      .catch(() => undefined);
    if (frame?.format !== 'png' || frame.width !== job.settings.width || frame.height !== job.settings.height) {
      throw new ResultRejected(`the last frame ${box} sent is not a ${job.settings.width}x${job.settings.height} PNG`);
    }
    // Last: the lock, so a box whose job went to another while it uploaded cannot list it too.
    if (!(await queue.holds(id, lock))) throw new ClaimError(409, `job ${id} is no longer held by ${box}; another box has it`);
    queue.jobForBox(id);
    for (const [format, path] of files) {
      const name = `video.${format}`;
      linkSync(path, host.store.file(id, name));
      job.videos[format] = name;
    }
    linkSync(lastFrame, host.store.file(id, LAST_FRAME_FILE));
    job.seed = result.seed;
    if (result.seeds) job.seeds = result.seeds;
    job.provider = result.provider;
    job.timings = { totalMs: Math.round(result.totalMs) };
    writeFileAtomic(host.store.file(id, 'settings.json'), JSON.stringify({ ...job.settings, seed: result.seed }, null, 2));
    host.store.log(id, `videos received from ${box} and checked`);
    host.finish(job, 'done');
  } finally {
    for (const path of uploads.values()) rmSync(path, { force: true });
  }
}

// A job's poster: one frame of its video as a small JPEG, for the page's history. Made from the
// finished video on first request (so jobs from before this existed get one too) and kept beside it.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { runFfmpeg } from './ffmpeg.js';

export const POSTER_WIDTH = 320;

const making = new Map<string, Promise<string>>();

/** Writes frame `frame` of `video` to `out` (once; concurrent callers share the work). */
export function ensurePoster(video: string, out: string, frame: number): Promise<string> {
  if (existsSync(out)) return Promise.resolve(out);
  let p = making.get(out);
  if (!p) {
    const tmp = `${out}.${process.pid}.tmp.jpg`;
    p = runFfmpeg(['-i', video, '-vf', `select=eq(n\\,${Math.max(0, Math.floor(frame))}),scale=min(${POSTER_WIDTH}\\,iw):-2`, '-frames:v', '1', '-q:v', '4', '-y', tmp])
      .then(() => {
        if (!existsSync(tmp)) throw new Error(`the video has no frame ${frame}`);
        renameSync(tmp, out);
        return out;
      })
      .finally(() => {
        making.delete(out);
        rmSync(tmp, { force: true });
      });
    making.set(out, p);
  }
  return p;
}

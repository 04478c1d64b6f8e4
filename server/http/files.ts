// A job's files: its input picture, its videos and a poster frame for the history. Sent only to a
// client that may see the job, and never with the server's path in an error.
import { existsSync } from 'node:fs';
import { type Response, Router } from 'express';
import { ensurePoster } from '../../media/poster.js';
import { downloadName } from '../../common/download-name.js';
import { videoFormats, type VideoFormat } from '../../common/video-formats.js';
import { ownJob, type ApiContext } from './context.js';
import { HttpError } from './errors.js';

/** A job's file, or a 404 saying it is gone. */
function sendJobFile(res: Response, path: string) {
  res.sendFile(path, (err?: Error) => {
    if (!err || res.headersSent) return;
    res.status(404).json({ error: 'that file is no longer on the server' });
  });
}

export function fileRoutes(ctx: ApiContext): Router {
  const { store } = ctx.service;
  const router = Router();
  router.get('/jobs/:id/input.png', (req, res) => {
    const job = ownJob(ctx, res, String(req.params.id));
    sendJobFile(res, store.file(job.id, job.inputName));
  });
  router.get('/jobs/:id/video.:ext', (req, res) => {
    const job = ownJob(ctx, res, String(req.params.id));
    const ext = req.params.ext as VideoFormat;
    if (!videoFormats.includes(ext)) throw new HttpError(404, `no such video format "${String(req.params.ext).slice(0, 10)}"; use mp4, gif or webm`);
    const name = job.videos[ext];
    if (!name) {
      if (job.status !== 'done') throw new HttpError(404, `job ${job.id} is ${job.status}; no video yet`);
      throw new HttpError(
        404,
        job.settings.formats.includes(ext) ? `the ${ext} of job ${job.id} is no longer on the server; run the job again` : `job ${job.id} was not asked for ${ext}; run it again with that format`,
      );
    }
    if (req.query.download !== undefined) res.attachment(downloadName(job, ext));
    sendJobFile(res, store.file(job.id, name));
  });
  router.get('/jobs/:id/poster.jpg', async (req, res) => {
    const job = ownJob(ctx, res, String(req.params.id));
    const video = videoFormats.map((f) => job.videos[f]).find(Boolean);
    if (job.status !== 'done' || !video) throw new HttpError(404, `job ${job.id} is ${job.status}; it has no video to take a frame from`);
    const videoPath = store.file(job.id, video);
    // Sent like the job's other files; a video removed behind the server's back is the same 404 as on its own route.
    if (!existsSync(videoPath)) throw new HttpError(404, `the video of job ${job.id} is no longer on the server; run the job again`);
    const frames = job.settings.frames;
    sendJobFile(res, await ensurePoster(videoPath, store.file(job.id, 'poster.jpg'), frames ? frames / 2 : 0));
  });
  return router;
}

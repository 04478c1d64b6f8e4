// The front server's API for worker boxes (behind the same token as the rest of the API): a box
// claims a job it took from BullMQ and gets its input picture, then delivers its videos. Every
// request names the box, its worker and BullMQ's lock token for the job; the lock is checked
// against Redis before anything else, so only the box that holds the job now is heard, and a
// page user (who has the token too) learns nothing of anyone's job here.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { NextFunction, Request, Response } from 'express';
import { Router } from 'express';
import multer from 'multer';
import { z } from 'zod';
import { ranOnSchema, type RanOn } from '../../common/boxes.js';
import { formatError } from '../../common/messages.js';
import { videoFormats, type VideoFormat } from '../../common/video-formats.js';
import { HttpError } from '../http/errors.js';
import { JOB_ID } from '../jobs/job.js';
import type { JobHost } from '../jobs/job-queue.js';
import { BOX_HEADERS, boxResultSchema, LAST_FRAME_FIELD } from './redis-link.js';
import { ClaimError, type RedisQueue } from './redis-queue.js';
import { ResultRejected, receiveResult } from './remote-results.js';

/** Larger than any video the encoder may write (server/http/jobs.ts MAX_OUTPUT_BYTES of raw frames). */
const MAX_VIDEO_BYTES = 2 ** 30;
/** The "result" field: a short JSON text. */
const MAX_FIELD_BYTES = 64 * 1024;

interface BoxRequest {
  id: string;
  ranOn: RanOn;
  lock: string;
}

function boxRequest(req: Request): BoxRequest {
  const id = String(req.params.id);
  if (!JOB_ID.test(id)) throw new HttpError(404, `no job with id "${id.slice(0, 40)}"`);
  const header = (name: string) => {
    const v = req.headers[name];
    return typeof v === 'string' ? decodeURIComponent(v) : undefined;
  };
  const ranOn = ranOnSchema.safeParse({ box: header(BOX_HEADERS.box), worker: header(BOX_HEADERS.worker) });
  const lock = z.string().min(1).max(200).safeParse(header(BOX_HEADERS.lock));
  if (!ranOn.success || !lock.success) throw new HttpError(400, `a box names itself, its worker and its lock on the job in the ${Object.values(BOX_HEADERS).join(', ')} headers`);
  return { id, ranOn: ranOn.data, lock: lock.data };
}

const claimErrors = (err: unknown): never => {
  if (err instanceof ClaimError) throw new HttpError(err.status, err.message);
  if (err instanceof ResultRejected) throw new HttpError(422, err.message);
  throw err;
};

/** A box's upload that multer refused, in words that say what to send. */
function boxUploadError(err: multer.MulterError): HttpError {
  const parts = `"result" once, each video format the job asked for once and "${LAST_FRAME_FIELD}" once`;
  switch (err.code) {
    case 'LIMIT_FILE_SIZE':
      return new HttpError(413, `the file "${err.field}" is larger than the ${MAX_VIDEO_BYTES / 2 ** 30} GiB a box may send`);
    case 'LIMIT_UNEXPECTED_FILE':
      return new HttpError(400, `the file "${err.field}" came more than once; send ${parts}`);
    case 'LIMIT_FIELD_VALUE':
      return new HttpError(400, `the field "${err.field}" is longer than ${MAX_FIELD_BYTES / 1024} kB; "result" is a short JSON text`);
    default:
      return new HttpError(400, `the upload has more parts than a result has (${err.message}); send ${parts}`);
  }
}

export function boxRoutes(host: JobHost, queue: RedisQueue): Router {
  const router = Router();

  router.get('/boxes/jobs/:id/input.png', async (req, res) => {
    const { id, ranOn, lock } = boxRequest(req);
    const job = await queue.claim(id, ranOn, lock).catch(claimErrors);
    res.sendFile(host.store.file(job.id, job.inputName));
  });

  // The videos land as temporary files in the job's folder (the server removes those at start).
  const receive = multer({
    storage: multer.diskStorage({
      destination: (req, _file, cb) => cb(null, host.store.dir(String(req.params.id))),
      filename: (_req, file, cb) => cb(null, `.upload-${file.fieldname}-${randomBytes(6).toString('hex')}.tmp`),
    }),
    limits: { fileSize: MAX_VIDEO_BYTES, files: videoFormats.length + 1, fields: 1, fieldSize: MAX_FIELD_BYTES, parts: videoFormats.length + 2 },
    fileFilter: (_req, file, cb) => cb(null, [...videoFormats, LAST_FRAME_FIELD].includes(file.fieldname)),
  }).fields([...videoFormats, LAST_FRAME_FIELD].map((name) => ({ name, maxCount: 1 })));
  // multer removes what it wrote when it refuses an upload; the refusal is worded here for a box (the API's handler words it for the page's image upload).
  const upload = (req: Request, res: Response, next: NextFunction) => receive(req, res, (err?: unknown) => next(err instanceof multer.MulterError ? boxUploadError(err) : err));

  // The lock is checked before the body is read, so no one else's upload reaches the disk.
  const holder = async (req: Request, res: Response, next: NextFunction) => {
    const who = boxRequest(req);
    if (!(await queue.holds(who.id, who.lock))) throw new HttpError(409, `job ${who.id} is not held by ${who.ranOn.box} (another box has it, or its lock expired)`);
    try {
      queue.jobForBox(who.id);
    } catch (err) {
      claimErrors(err);
    }
    res.locals.box = who;
    next();
  };

  router.post('/boxes/jobs/:id/result', holder, upload, async (req, res) => {
    const who = res.locals.box as BoxRequest;
    // Each uploaded field (multer let through only the formats and the last frame) and its file.
    const files = new Map<VideoFormat | typeof LAST_FRAME_FIELD, string>();
    for (const [field, [file]] of Object.entries((req.files ?? {}) as Record<string, Express.Multer.File[]>)) if (file) files.set(field as VideoFormat | typeof LAST_FRAME_FIELD, file.path);
    let raw: unknown;
    try {
      raw = JSON.parse(String((req.body as Record<string, unknown>).result ?? ''));
    } catch {
      for (const path of files.values()) rmSync(path, { force: true });
      throw new HttpError(400, 'send the result as JSON in the "result" field beside the videos');
    }
    const result = boxResultSchema.safeParse(raw);
    if (!result.success) {
      for (const path of files.values()) rmSync(path, { force: true });
      throw new HttpError(400, `bad result: ${formatError(result.error, (key) => key || 'result')}`);
    }
    const { lastFrameRefused } = await receiveResult(host, queue, who.id, who.lock, who.ranOn.box, files, result.data).catch(claimErrors);
    res.json({ id: who.id, done: true, ...(lastFrameRefused ? { lastFrameRefused } : {}) });
  });

  return router;
}

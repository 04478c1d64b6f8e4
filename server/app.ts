// Express + socket.io: the HTTP API, the page's static files, and live job progress by room.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import rateLimit from 'express-rate-limit';
import helmet from 'helmet';
import multer from 'multer';
import sharp, { type Metadata } from 'sharp';
import { Server as IoServer } from 'socket.io';
import { decodeImage } from '../models/pipeline/prepare-image.js';
import { readCookie, requireToken, TOKEN_COOKIE, tokenMatches } from './auth.js';
import { JOB_ID, jobSettingsSchema, type JobRecord } from './jobs/job.js';
import { QueueFullError, type JobService } from './jobs/job-service.js';
import { ensurePoster } from './media/poster.js';
import type { HealthInfo } from '../common/api-types.js';
import { formatError } from '../common/messages.js';
import type { ClientToServerEvents, ServerToClientEvents } from '../common/socket-events.js';
import { videoFormats, type VideoFormat } from '../common/video-formats.js';

export type { HealthInfo } from '../common/api-types.js';

export const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;
export const MAX_UPLOAD_PIXELS = 50_000_000;

export interface AppOptions {
  service: JobService;
  token?: string;
  health: () => HealthInfo | Promise<HealthInfo>;
  clientDir?: string;
  jobRateLimit?: number;
  /** Names a job may ask for in settings.model. */
  modelNames?: string[];
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export function snapshot(service: JobService, job: JobRecord) {
  return { ...job, position: service.position(job.id), queueLength: service.queueLength };
}

export function createApp(opts: AppOptions): { app: express.Express; server: HttpServer; io: IoServer<ClientToServerEvents, ServerToClientEvents> } {
  const { service } = opts;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 1);
  app.use(
    helmet({
      contentSecurityPolicy: { directives: { 'img-src': ["'self'", 'data:', 'blob:'], 'media-src': ["'self'", 'blob:'], upgradeInsecureRequests: null } },
      crossOriginEmbedderPolicy: false,
    }),
  );
  const api = express.Router();
  api.use(requireToken(opts.token));
  api.use(express.json({ limit: '64kb' }));

  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: MAX_UPLOAD_BYTES, files: 1, fields: 4, fieldSize: 64 * 1024 } });
  const limiter = rateLimit({ windowMs: 60_000, limit: opts.jobRateLimit ?? 30, standardHeaders: 'draft-8', legacyHeaders: false, message: { error: 'too many jobs submitted in the last minute; wait a little' } });

  const jobOr404 = (id: string): JobRecord => {
    const job = JOB_ID.test(id) ? service.store.get(id) : undefined;
    if (!job) throw new HttpError(404, `no job with id "${id.slice(0, 40)}"`);
    return job;
  };

  const checkModel = (name: string | undefined) => {
    if (name !== undefined && opts.modelNames && !opts.modelNames.includes(name)) {
      throw new HttpError(400, `bad settings: model "${name.slice(0, 60)}" is not installed; installed: ${opts.modelNames.join(', ')}`);
    }
  };

  api.get('/health', async (_req, res) => {
    res.json({ ...(await opts.health()), queue: { waiting: service.queueLength, running: service.runningId ?? null } });
  });

  api.post('/jobs', limiter, upload.single('image'), async (req, res) => {
    if (!req.file) throw new HttpError(400, 'no image: send the picture as the multipart field "image"');
    let raw: unknown = {};
    if (typeof req.body?.settings === 'string' && req.body.settings.trim()) {
      try {
        raw = JSON.parse(req.body.settings);
      } catch {
        throw new HttpError(400, 'the "settings" field is not valid JSON');
      }
    }
    const parsed = jobSettingsSchema.safeParse(raw);
    if (!parsed.success) throw new HttpError(400, `bad settings: ${formatError(parsed.error)}`);
    checkModel(parsed.data.model);
    const png = await normaliseUpload(req.file.buffer);
    const ext = (req.file.originalname.split('.').pop() ?? 'bin').toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 5) || 'bin';
    const job = service.submit({ png, original: { name: `original.${ext}`, data: req.file.buffer } }, parsed.data);
    res.status(202).json({ id: job.id, position: service.position(job.id) });
  });

  api.get('/jobs', (_req, res) => {
    res.json(service.store.list().map((j) => snapshot(service, j)));
  });
  api.get('/jobs/:id', (req, res) => {
    res.json(snapshot(service, jobOr404(String(req.params.id))));
  });
  api.delete('/jobs/:id', (req, res) => {
    const job = jobOr404(String(req.params.id));
    if (!service.cancel(job.id)) throw new HttpError(409, `job ${job.id} has already ${job.status === 'done' ? 'finished' : job.status}; nothing to cancel`);
    res.json(snapshot(service, job));
  });
  api.post('/jobs/:id/rerun', limiter, async (req, res) => {
    const old = jobOr404(String(req.params.id));
    const override = jobSettingsSchema.safeParse({ ...old.settings, ...(req.body?.settings ?? {}) });
    if (!override.success) throw new HttpError(400, `bad settings: ${formatError(override.error)}`);
    checkModel(override.data.model);
    const png = await readFile(service.store.file(old.id, old.inputName));
    const job = service.submit({ png }, override.data, old.id);
    res.status(202).json({ id: job.id, position: service.position(job.id) });
  });
  api.get('/jobs/:id/input.png', (req, res) => {
    const job = jobOr404(String(req.params.id));
    res.sendFile(service.store.file(job.id, job.inputName));
  });
  api.get('/jobs/:id/video.:ext', (req, res) => {
    const job = jobOr404(String(req.params.id));
    const ext = req.params.ext as VideoFormat;
    if (!videoFormats.includes(ext)) throw new HttpError(404, `no such video format "${String(req.params.ext).slice(0, 10)}"; use mp4, gif or webm`);
    const name = job.videos[ext];
    if (!name) throw new HttpError(404, job.status === 'done' ? `job ${job.id} was not asked for ${ext}; run it again with that format` : `job ${job.id} is ${job.status}; no video yet`);
    if (req.query.download !== undefined) res.attachment(`svd-${job.id}.${ext}`);
    res.sendFile(service.store.file(job.id, name));
  });
  api.get('/jobs/:id/poster.jpg', async (req, res) => {
    const job = jobOr404(String(req.params.id));
    const video = videoFormats.map((f) => job.videos[f]).find(Boolean);
    if (job.status !== 'done' || !video) throw new HttpError(404, `job ${job.id} is ${job.status}; it has no video to take a frame from`);
    const frames = job.settings.frames;
    res.sendFile(await ensurePoster(service.store.file(job.id, video), service.store.file(job.id, 'poster.jpg'), frames ? frames / 2 : 0));
  });
  api.use((_req, _res, next) => next(new HttpError(404, 'no such API endpoint')));

  app.use('/api', api);
  if (opts.clientDir && existsSync(join(opts.clientDir, 'index.html'))) {
    app.use(express.static(opts.clientDir, { index: 'index.html', maxAge: '1h' }));
  } else {
    app.get('/', (_req, res) => {
      res.type('text/plain').send('svd-studio API is running; the page is not built (npm run build:client). See README for the HTTP API.');
    });
  }

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof HttpError) return void res.status(err.status).json({ error: err.message });
    if (err instanceof QueueFullError) return void res.status(503).json({ error: err.message });
    if (err instanceof multer.MulterError) {
      const msg = err.code === 'LIMIT_FILE_SIZE' ? `the image is larger than ${MAX_UPLOAD_BYTES / 2 ** 20} MB; send a smaller file` : `bad upload: ${err.message}`;
      return void res.status(err.code === 'LIMIT_FILE_SIZE' ? 413 : 400).json({ error: msg });
    }
    const e = err as Error & { status?: number; type?: string };
    if (e.status && e.status >= 400 && e.status < 500) return void res.status(e.status).json({ error: e.message });
    console.error('request failed:', e);
    res.status(500).json({ error: `internal error: ${e.message}` });
  });

  const server = createServer(app);
  const io = new IoServer<ClientToServerEvents, ServerToClientEvents>(server, { connectionStateRecovery: { maxDisconnectionDuration: 2 * 60_000, skipMiddlewares: false }, maxHttpBufferSize: 1e6 });
  io.use((socket, next) => {
    const given = (socket.handshake.auth as { token?: string }).token ?? readCookie(socket.handshake.headers.cookie, TOKEN_COOKIE);
    if (tokenMatches(opts.token, given)) next();
    else next(new Error(given ? 'wrong access token' : 'access token required'));
  });
  io.on('connection', (socket) => {
    // Typed by the event map, but sent by any client: the id and the callback are checked.
    socket.on('watch', (id, ack) => {
      const reply = typeof ack === 'function' ? ack : () => {};
      const job = typeof id === 'string' && JOB_ID.test(id) ? service.store.get(id) : undefined;
      if (!job) return reply({ error: 'no such job' });
      void socket.join(`job:${id}`);
      reply({ job: snapshot(service, job) });
    });
    socket.on('unwatch', (id) => {
      if (typeof id === 'string') void socket.leave(`job:${id}`);
    });
  });
  service.on('update', (job) => {
    io.to(`job:${job.id}`).emit('job', snapshot(service, job));
    io.emit('history', { id: job.id, status: job.status });
  });
  service.on('preview', (id, url) => io.to(`job:${id}`).emit('preview', { id, url }));
  return { app, server, io };
}

/** Checks the pixel count from the header before decoding, then stores an upright RGB PNG. */
async function normaliseUpload(data: Buffer): Promise<Uint8Array> {
  let meta: Metadata;
  try {
    meta = await sharp(data).metadata();
  } catch {
    throw new HttpError(415, 'the upload is not an image we can read; use a PNG, JPEG, WebP, AVIF, GIF or TIFF file');
  }
  const pixels = (meta.width ?? 0) * (meta.pageHeight ?? meta.height ?? 0);
  if (pixels > MAX_UPLOAD_PIXELS) throw new HttpError(413, `the image has ${(pixels / 1e6).toFixed(0)} megapixels, over the ${MAX_UPLOAD_PIXELS / 1e6} MP limit; scale it down first`);
  const img = await decodeImage(data).catch((e: Error) => {
    throw new HttpError(415, e.message);
  });
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
}

// Express + socket.io: the HTTP API, the page's static files, and live job progress by room.
// Everything a client sends (body, fields, params, the handshake, event arguments) is parsed by a
// schema before use, and every client mistake is answered with a 4xx and a plain message.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import rateLimit, { ipKeyGenerator } from 'express-rate-limit';
import helmet from 'helmet';
import multer from 'multer';
import sharp, { type Metadata } from 'sharp';
import { Server as IoServer, type Socket } from 'socket.io';
import { z } from 'zod';
import { decodeImage } from '../models/pipeline/prepare-image.js';
import { checkAccess, FailedLoginThrottle, lookupToken, requestClient, requireToken, type Gate } from './auth.js';
import { trustsHop, type ProxyTrust } from './client-address.js';
import { DiskFullError, isNoSpace } from './disk-full.js';
import { JOB_ID, jobSettingsSchema, type JobRecord, type JobSettings } from './jobs/job.js';
import { LAST_FRAME_FILE, QueueFullError, type JobService } from './jobs/job-service.js';
import { INSTALL_INTERPOLATOR_COMMAND } from '../models/download/rife-weights.js';
import { ensurePoster } from '../media/poster.js';
import type { HealthInfo, Submitted } from '../common/api-types.js';
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
  /** The models whose jobs may interpolate (a frame interpolator is installed for them); all when absent. */
  interpolatingModels?: string[];
  /** Whose X-Forwarded-For is believed (see client-address.ts); 'none' by default. */
  trustProxy?: ProxyTrust;
  /** Wrong tokens a client may send per window before it is refused for the rest of it. */
  loginThrottle?: { limit: number; windowMs: number };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The multipart fields next to the image. */
const jobFormSchema = z.strictObject(
  { settings: z.string().optional() },
  { error: (i) => (i.code === 'unrecognized_keys' ? `unexpected form field ${i.keys.join(', ')}; send only "image" and "settings"` : 'send "settings" once, as a JSON text field') },
);
const rerunBodySchema = z.object({ settings: z.record(z.string(), z.unknown()).optional() }, { error: 'the body must be a JSON object like {"settings": {...}}' }).optional();
const jobIdArg = z.string().regex(JOB_ID);

/** Formats sharp may decode for us; others it knows (SVG, PDF, ...) are refused. */
const UPLOAD_FORMATS = new Set(['png', 'jpeg', 'webp', 'gif', 'tiff', 'heif']);

export function snapshot(service: JobService, job: JobRecord) {
  return { ...job, position: service.position(job.id), queueLength: service.queueLength };
}

export function createApp(opts: AppOptions): { app: express.Express; server: HttpServer; io: IoServer<ClientToServerEvents, ServerToClientEvents> } {
  const { service } = opts;
  const trust = opts.trustProxy ?? 'none';
  const gate: Gate = { token: opts.token, trust, throttle: new FailedLoginThrottle(opts.loginThrottle) };
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustsHop(trust));
  app.use(
    helmet({
      contentSecurityPolicy: { directives: { 'img-src': ["'self'", 'data:', 'blob:'], 'media-src': ["'self'", 'blob:'], upgradeInsecureRequests: null } },
      crossOriginEmbedderPolicy: false,
    }),
  );
  const api = express.Router();
  api.use(requireToken(gate));
  api.use(express.json({ limit: '64kb' }));

  const multipart = multer({ storage: multer.memoryStorage(), limits: { fileSize: MAX_UPLOAD_BYTES, files: 1, fields: 4, fieldSize: 64 * 1024, parts: 8, headerPairs: 100 } });
  // A body cut off or malformed is the client's; busboy reports it as a plain Error.
  const upload = (req: Request, res: Response, next: NextFunction) =>
    multipart.single('image')(req, res, (err?: unknown) => {
      if (!err || err instanceof multer.MulterError) return next(err);
      next(new HttpError(400, `the upload is malformed or was cut off (${(err as Error).message}); send it again as multipart/form-data`));
    });
  const limiter = rateLimit({
    windowMs: 60_000,
    limit: opts.jobRateLimit ?? 30,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: (req) => ipKeyGenerator(requestClient(req, trust)),
    message: { error: 'too many jobs submitted in the last minute; wait a little' },
  });

  const jobOr404 = (id: string): JobRecord => {
    const job = JOB_ID.test(id) ? service.store.get(id) : undefined;
    if (!job) throw new HttpError(404, `no job with id "${id.slice(0, 40)}"`);
    return job;
  };

  const checkModel = (settings: JobSettings) => {
    const name = settings.model;
    if (name !== undefined && opts.modelNames && !opts.modelNames.includes(name)) {
      throw new HttpError(400, `bad settings: model "${name.slice(0, 60)}" is not installed; installed: ${opts.modelNames.join(', ')}`);
    }
    const model = name ?? opts.modelNames?.[0];
    if (settings.interpolate > 1 && opts.interpolatingModels && (model === undefined || !opts.interpolatingModels.includes(model))) {
      throw new HttpError(
        400,
        `bad settings: interpolate ${settings.interpolate} needs a frame interpolator, and none is installed on the server; install RIFE there with ${INSTALL_INTERPOLATOR_COMMAND}`,
      );
    }
  };
  /** 202 with the first job (and all of them when variations made several). */
  const accepted = (res: Response, jobs: JobRecord[]) =>
    res.status(202).json({ id: jobs[0]!.id, position: service.position(jobs[0]!.id), ...(jobs.length > 1 ? { ids: jobs.map((j) => j.id) } : {}) } satisfies Submitted);

  api.get('/health', async (_req, res) => {
    res.json({ ...(await opts.health()), queue: { waiting: service.queueLength, running: service.runningId ?? null } });
  });

  api.post('/jobs', limiter, upload, async (req, res) => {
    if (!req.is('multipart/form-data')) throw new HttpError(415, 'send the job as multipart/form-data with the picture in the field "image" and the settings as JSON in "settings"');
    if (!req.file) throw new HttpError(400, 'no image: send the picture as the multipart field "image"');
    const form = jobFormSchema.safeParse({ ...req.body });
    if (!form.success) throw new HttpError(400, `bad form: ${form.error.issues.map((i) => i.message).join('; ')}`);
    let raw: unknown = {};
    if (form.data.settings?.trim()) {
      try {
        raw = JSON.parse(form.data.settings);
      } catch {
        throw new HttpError(400, 'the "settings" field is not valid JSON');
      }
    }
    const parsed = jobSettingsSchema.safeParse(raw);
    if (!parsed.success) throw new HttpError(400, `bad settings: ${formatError(parsed.error)}`);
    checkModel(parsed.data);
    const png = await normaliseUpload(req.file.buffer);
    const ext =
      (req.file.originalname.split('.').pop() ?? 'bin')
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '')
        .slice(0, 5) || 'bin';
    accepted(res, service.submit({ png, original: { name: `original.${ext}`, data: req.file.buffer } }, parsed.data));
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
    const body = rerunBodySchema.safeParse(req.body);
    if (!body.success) throw new HttpError(400, `bad request: ${formatError(body.error)}`);
    const override = jobSettingsSchema.safeParse({ ...old.settings, ...body.data?.settings });
    if (!override.success) throw new HttpError(400, `bad settings: ${formatError(override.error)}`);
    checkModel(override.data);
    const png = await readFile(service.store.file(old.id, old.inputName)).catch(() => {
      throw new HttpError(410, `the input picture of job ${old.id} is no longer on the server; submit it again`);
    });
    accepted(res, service.submit({ png }, override.data, { rerunOf: old.id }));
  });
  // A new job whose input is the last frame of a finished one, with its settings and a new seed unless given.
  api.post('/jobs/:id/continue', limiter, async (req, res) => {
    const old = jobOr404(String(req.params.id));
    if (old.status !== 'done') throw new HttpError(409, `job ${old.id} is ${old.status}; only a finished video can be continued`);
    const body = rerunBodySchema.safeParse(req.body);
    if (!body.success) throw new HttpError(400, `bad request: ${formatError(body.error)}`);
    const settings = jobSettingsSchema.safeParse({ ...old.settings, seed: undefined, ...body.data?.settings });
    if (!settings.success) throw new HttpError(400, `bad settings: ${formatError(settings.error)}`);
    checkModel(settings.data);
    const png = await readFile(service.store.file(old.id, LAST_FRAME_FILE)).catch(() => {
      throw new HttpError(410, `the last frame of job ${old.id} is not on the server (jobs made before continuing existed do not keep it); run the job again first`);
    });
    accepted(res, service.submit({ png }, settings.data, { continues: old.id }));
  });
  api.get('/jobs/:id/input.png', (req, res) => {
    const job = jobOr404(String(req.params.id));
    sendJobFile(res, service.store.file(job.id, job.inputName));
  });
  api.get('/jobs/:id/video.:ext', (req, res) => {
    const job = jobOr404(String(req.params.id));
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
    if (req.query.download !== undefined) res.attachment(`svd-${job.id}.${ext}`);
    sendJobFile(res, service.store.file(job.id, name));
  });
  api.get('/jobs/:id/poster.jpg', async (req, res) => {
    const job = jobOr404(String(req.params.id));
    const video = videoFormats.map((f) => job.videos[f]).find(Boolean);
    if (job.status !== 'done' || !video) throw new HttpError(404, `job ${job.id} is ${job.status}; it has no video to take a frame from`);
    const videoPath = service.store.file(job.id, video);
    // Sent like the job's other files; a video removed behind the server's back is the same 404 as on its own route.
    if (!existsSync(videoPath)) throw new HttpError(404, `the video of job ${job.id} is no longer on the server; run the job again`);
    const frames = job.settings.frames;
    sendJobFile(res, await ensurePoster(videoPath, service.store.file(job.id, 'poster.jpg'), frames ? frames / 2 : 0));
  });
  api.use((_req, _res, next) => next(new HttpError(404, 'no such API endpoint')));

  app.use('/api', api);
  if (opts.clientDir && existsSync(join(opts.clientDir, 'index.html'))) {
    app.use(express.static(opts.clientDir, { index: 'index.html', maxAge: '1h' }));
  } else {
    app.get('/', (_req, res) => {
      res.type('text/plain').send('svd-studio API is running; the page is not built (npm run build). See README for the HTTP API.');
    });
  }

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof HttpError) return void res.status(err.status).json({ error: err.message });
    if (err instanceof QueueFullError) return void res.status(503).json({ error: err.message });
    if (err instanceof DiskFullError) return void res.status(507).json({ error: err.message });
    if (isNoSpace(err)) return void res.status(507).json({ error: new DiskFullError('the upload').message });
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
    const h = socket.handshake;
    const auth = z.looseObject({ token: z.unknown() }).safeParse(h.auth);
    const lookup = lookupToken({ handshake: auth.success ? auth.data.token : undefined, cookie: h.headers.cookie });
    const refused = checkAccess(gate, lookup, requestClient({ socket: { remoteAddress: h.address }, headers: h.headers }, trust));
    if (!refused) return next();
    next(new Error(refused.status === 401 && lookup.ok && !lookup.token ? 'access token required: pass it as auth.token' : refused.error));
  });
  io.on('connection', (socket) => {
    onEvent(socket, 'watch', jobIdArg, (id, reply) => {
      const job = service.store.get(id);
      if (!job) return reply({ error: 'no such job' });
      void socket.join(`job:${id}`);
      reply({ job: snapshot(service, job) });
    });
    onEvent(socket, 'unwatch', jobIdArg, (id) => void socket.leave(`job:${id}`));
  });
  service.on('update', (job) => {
    io.to(`job:${job.id}`).emit('job', snapshot(service, job));
    io.emit('history', { id: job.id, status: job.status });
  });
  service.on('preview', (id, url) => io.to(`job:${id}`).emit('preview', { id, url }));
  return { app, server, io };
}

/**
 * A socket.io event whose one argument is parsed by `schema`; the reply goes to the client's
 * acknowledgement when it sent one. Bad arguments get an error reply, never a thrown error.
 */
function onEvent<S extends z.ZodType>(socket: Socket, name: string, schema: S, handler: (arg: z.output<S>, reply: (r: unknown) => void) => void) {
  socket.on(name, (...args: unknown[]) => {
    const last = args.at(-1);
    const ack = typeof last === 'function' ? (last as (r: unknown) => void) : undefined;
    if (ack) args.pop();
    const reply = (r: unknown) => void ack?.(r);
    const parsed = schema.safeParse(args[0]);
    if (!parsed.success || args.length !== 1) return reply({ error: `"${name}" takes one job id (16 lower-case letters and digits)` });
    handler(parsed.data, reply);
  });
}

/** A job's file, or a 404 saying it is gone (never the server's path). */
function sendJobFile(res: Response, path: string) {
  res.sendFile(path, (err?: Error) => {
    if (!err || res.headersSent) return;
    res.status(404).json({ error: 'that file is no longer on the server' });
  });
}

const FORMATS_HINT = 'use a PNG, JPEG, WebP, AVIF, GIF or TIFF file';

/** Checks the format and the pixel count from the header before decoding, then stores an upright RGB PNG. */
async function normaliseUpload(data: Buffer): Promise<Uint8Array> {
  let meta: Metadata;
  try {
    // Only the header is read here, so no pixel limit yet: ours below gives the clearer message.
    meta = await sharp(data, { limitInputPixels: false }).metadata();
  } catch {
    throw new HttpError(415, `the upload is not an image we can read; ${FORMATS_HINT}`);
  }
  if (meta.format === 'heif' && meta.compression === 'hevc') {
    throw new HttpError(415, `HEIC photos (the iPhone's default) cannot be read here; ${FORMATS_HINT} (on the iPhone: Settings > Camera > Formats > Most Compatible, or share the photo as JPEG)`);
  }
  if (!UPLOAD_FORMATS.has(meta.format)) throw new HttpError(415, `${meta.format.toUpperCase()} files are not accepted; ${FORMATS_HINT}`);
  const pixels = (meta.width ?? 0) * (meta.pageHeight ?? meta.height ?? 0);
  if (pixels > MAX_UPLOAD_PIXELS) throw new HttpError(413, `the image has ${(pixels / 1e6).toFixed(0)} megapixels, over the ${MAX_UPLOAD_PIXELS / 1e6} MP limit; scale it down first`);
  const img = await decodeImage(data).catch(() => {
    throw new HttpError(415, `the image could not be decoded: the file may be damaged or cut off; ${FORMATS_HINT}`);
  });
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toBuffer();
}

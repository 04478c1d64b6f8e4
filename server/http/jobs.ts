// The jobs resource: submit (multipart), list (paged, newest first), one job, cancel, re-run,
// continue from a finished job's last frame, and delete an ended job with its files. Every route
// answers only for jobs the client may see.
import { readFile } from 'node:fs/promises';
import { type RequestHandler, Router } from 'express';
import { z } from 'zod';
import { formatError } from '../../common/messages.js';
import type { Submitted } from '../../common/api-types.js';
import { chainFrameCount, INSTALL_INTERPOLATOR_COMMAND } from '../../common/video-chain.js';
import { jobSettingsSchema, type JobRecord, type JobSettings } from '../jobs/job.js';
import { LAST_FRAME_FILE } from '../jobs/job-finisher.js';
import { JobBusyError, type JobService } from '../jobs/job-service.js';
import { snapshot } from '../jobs/snapshot.js';
import { mayAccess } from './access.js';
import { ownJob, ownerOfRequest, type ApiContext } from './context.js';
import { HttpError } from './errors.js';
import { normaliseUpload, receiveImage } from './upload.js';

/** The multipart fields next to the image. */
const jobFormSchema = z.strictObject(
  { settings: z.string().optional() },
  { error: (i) => (i.code === 'unrecognized_keys' ? `unexpected form field ${i.keys.join(', ')}; send only "image" and "settings"` : 'send "settings" once, as a JSON text field') },
);
/** The JSON body of a re-run, a continuation and a plan: settings to change, or none. */
const settingsBodySchema = z.object(
  { settings: z.record(z.string(), z.unknown(), { error: '"settings" must be a JSON object, like {"settings": {"steps": 25}}' }).optional() },
  { error: 'the body must be a JSON object like {"settings": {...}}' },
);

/** The settings a JSON body sends (none for an empty body), or a 400 that says what the body should be. */
export function settingsOfBody(raw: unknown): Record<string, unknown> | undefined {
  const body = settingsBodySchema.safeParse(raw === undefined ? {} : raw);
  if (!body.success) throw new HttpError(400, `bad request: ${body.error.issues[0]!.message}`);
  return body.data.settings;
}
const pageSchema = z.object({
  limit: z.coerce
    .number({ error: 'limit must be a whole number, 1–500' })
    .int({ error: 'limit must be a whole number, 1–500' })
    .min(1, { error: 'limit must be a whole number, 1–500' })
    .max(500, { error: 'limit must be a whole number, 1–500' })
    .default(100),
  before: z.string().max(40).optional(),
});

/**
 * The longest video the server will encode: frames x loops x (2 with ping-pong), and its raw size
 * in memory, which the encoder holds whole.
 */
export const MAX_OUTPUT_FRAMES = 1024;
export const MAX_OUTPUT_BYTES = 2 ** 30;
/** Frames when a job does not say (SVD-XT's trained count, the most any installed model uses). */
const DEFAULT_FRAMES = 25;

export function checkOutputLength(s: JobSettings): void {
  const frames = chainFrameCount(s, DEFAULT_FRAMES) * s.loops * (s.pingPong ? 2 : 1);
  const bytes = frames * s.width * s.height * 3;
  if (frames > MAX_OUTPUT_FRAMES || bytes > MAX_OUTPUT_BYTES) {
    const why =
      frames > MAX_OUTPUT_FRAMES
        ? `${frames} frames (frames${s.extend > 1 ? ' of each segment' : ''}${s.interpolate > 1 ? ' interpolated' : ''} x loops${s.pingPong ? ' x 2 for ping-pong' : ''}), over the ${MAX_OUTPUT_FRAMES} the server encodes`
        : `${(bytes / 2 ** 30).toFixed(1)} GiB of frames at ${s.width}x${s.height}, over the ${MAX_OUTPUT_BYTES / 2 ** 30} GiB the encoder may hold`;
    throw new HttpError(400, `bad settings: the video would be ${why}; use fewer loops, frames or segments, less interpolation, no ping-pong, or a smaller size`);
  }
}

/** A job's settings as a client sent them, checked by the settings table's schema and against this server (its models, its interpolators, the video's length). */
export function checkJobSettings(ctx: ApiContext, raw: unknown): JobSettings {
  const parsed = jobSettingsSchema.safeParse(raw);
  if (!parsed.success) throw new HttpError(400, `bad settings: ${formatError(parsed.error)}`);
  const name = parsed.data.model;
  if (name !== undefined && ctx.modelNames && !ctx.modelNames.includes(name)) {
    throw new HttpError(400, `bad settings: model "${name.slice(0, 60)}" is not installed; installed: ${ctx.modelNames.join(', ')}`);
  }
  const model = name ?? ctx.modelNames?.[0];
  if (parsed.data.interpolate > 1 && ctx.interpolatingModels && (model === undefined || !ctx.interpolatingModels.includes(model))) {
    throw new HttpError(
      400,
      `bad settings: interpolate ${parsed.data.interpolate} needs a frame interpolator, and none is installed on the server; install RIFE there with ${INSTALL_INTERPOLATOR_COMMAND}`,
    );
  }
  checkOutputLength(parsed.data);
  return parsed.data;
}

/** A job the worker that would take it is known to refuse (the job planner's check) is refused now, in the same words. */
function checkPlan(ctx: ApiContext, settings: JobSettings): void {
  const answer = ctx.plan?.(settings);
  if (answer && 'refused' in answer) throw new HttpError(422, answer.refused);
}

/** 202 with the first job, and all of them when variations made several. */
function accepted(service: JobService, jobs: JobRecord[]): Submitted {
  return { id: jobs[0]!.id, position: service.position(jobs[0]!.id), ...(jobs.length > 1 ? { ids: jobs.map((j) => j.id) } : {}) };
}

export function jobRoutes(ctx: ApiContext, limiter: RequestHandler): Router {
  const { service } = ctx;
  const router = Router();
  const checkSettings = (raw: unknown) => checkJobSettings(ctx, raw);

  router.post('/jobs', limiter, receiveImage, async (req, res) => {
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
    const settings = checkSettings(raw);
    const png = await normaliseUpload(req.file.buffer);
    checkPlan(ctx, settings);
    const ext =
      (req.file.originalname.split('.').pop() ?? 'bin')
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '')
        .slice(0, 5) || 'bin';
    res.status(202).json(accepted(service, service.submit({ png, original: { name: `original.${ext}`, data: req.file.buffer } }, settings, { owner: ownerOfRequest(res) })));
  });

  // Newest first, a page at a time: ?limit=N (default 100) and ?before=ID (the last id of the previous page).
  router.get('/jobs', (req, res) => {
    const page = pageSchema.safeParse(req.query);
    if (!page.success) throw new HttpError(400, `bad query: ${formatError(page.error)}`);
    const owner = ownerOfRequest(res);
    let jobs = service.store.list().filter((j) => mayAccess(j, owner, ctx.access));
    if (page.data.before !== undefined) {
      const at = jobs.findIndex((j) => j.id === page.data.before);
      if (at < 0) throw new HttpError(400, `bad query: before="${page.data.before}" is not a job in your history; use the id of the last job of the previous page`);
      jobs = jobs.slice(at + 1);
    }
    res.json(jobs.slice(0, page.data.limit).map((j) => snapshot(service, j)));
  });

  router.get('/jobs/:id', (req, res) => {
    res.json(snapshot(service, ownJob(ctx, res, String(req.params.id))));
  });

  router.delete('/jobs/:id', (req, res) => {
    const job = ownJob(ctx, res, String(req.params.id));
    if (!service.cancel(job.id)) throw new HttpError(409, `job ${job.id} has already ${job.status === 'done' ? 'finished' : job.status}; nothing to cancel`);
    res.json(snapshot(service, job));
  });

  router.delete('/history/:id', (req, res) => {
    const job = ownJob(ctx, res, String(req.params.id));
    try {
      service.remove(job.id);
    } catch (err) {
      if (err instanceof JobBusyError) throw new HttpError(409, err.message);
      throw err;
    }
    res.json({ id: job.id, removed: true });
  });

  router.post('/jobs/:id/rerun', limiter, async (req, res) => {
    const old = ownJob(ctx, res, String(req.params.id));
    // Only JSON: a form or text body is what a page elsewhere can send without asking (no-cors).
    if (!req.is('application/json')) throw new HttpError(415, 'send the re-run as JSON (content-type: application/json), {} for the same settings or {"settings": {...}} to change some');
    const settings = checkSettings({ ...old.settings, ...settingsOfBody(req.body) });
    checkPlan(ctx, settings);
    const png = await readFile(service.store.file(old.id, old.inputName)).catch(() => {
      throw new HttpError(410, `the input picture of job ${old.id} is no longer on the server; submit it again`);
    });
    res.status(202).json(accepted(service, service.submit({ png }, settings, { rerunOf: old.id, owner: ownerOfRequest(res) })));
  });

  // A new job whose input is the last frame of a finished one, with its settings and a new seed unless given.
  router.post('/jobs/:id/continue', limiter, async (req, res) => {
    const old = ownJob(ctx, res, String(req.params.id));
    if (!req.is('application/json')) throw new HttpError(415, 'send it as JSON (content-type: application/json), {} for the same settings or {"settings": {...}} to change some');
    if (old.status !== 'done') throw new HttpError(409, `job ${old.id} is ${old.status}; only a finished video can be continued`);
    const settings = checkSettings({ ...old.settings, seed: undefined, ...settingsOfBody(req.body) });
    checkPlan(ctx, settings);
    const png = await readFile(service.store.file(old.id, LAST_FRAME_FILE)).catch(() => {
      const why = old.ranOn ? `the worker box that made it (${old.ranOn.box}) sent none the server could use` : 'jobs made before continuing existed do not keep it';
      throw new HttpError(410, `the last frame of job ${old.id} is not on the server (${why}); run the job again first`);
    });
    res.status(202).json(accepted(service, service.submit({ png }, settings, { continues: old.id, owner: ownerOfRequest(res) })));
  });

  return router;
}

// What the front server and the worker boxes agree on in Redis: how --queue redis://… is read,
// the BullMQ queue's name and prefix, the job data a box gets, and the few keys and channels
// beside BullMQ's own (the boxes' reports, previews, cancels).
import type { ConnectionOptions } from 'bullmq';
import { z } from 'zod';
import { jobSettingsSchema } from '../../common/settings.js';

/** Every key svd-studio writes in the user's Redis starts with this. */
export const PREFIX = 'svd-studio';
/** The BullMQ queue the jobs go through. */
export const QUEUE_NAME = 'generate';
/** A hash: box name → its latest report (common/boxes.ts). */
export const BOXES_KEY = `${PREFIX}:boxes`;
/** Set by each box with an expiry it renews while it runs: a box whose key is gone has stopped. */
export const aliveKey = (box: string) => `${PREFIX}:box:${box}:alive`;
/** Pub/sub: a running job's previews, `{jobId, url}` (lost when no one listens, like a frame missed). */
export const PREVIEW_CHANNEL = `${PREFIX}:preview`;
/** Pub/sub: the id of a job to stop; the box running it cancels it. */
export const CANCEL_CHANNEL = `${PREFIX}:cancel`;
/** How often a box reports, and how long the front server waits before it shows a box as gone. */
export const REPORT_EVERY_MS = 5000;
export const GONE_AFTER_MS = 20_000;
/** A gone box's report is dropped after this. */
export const FORGET_AFTER_MS = 24 * 3600_000;

const REDIS_URL_HINT = 'give the Redis address as redis://HOST:PORT or redis://HOST:PORT/DB (rediss:// for TLS; a password as redis://:PASSWORD@HOST:PORT)';
/** A queue URL: redis://[user:password@]host[:port][/db], or rediss:// for TLS. */
export const redisUrlSchema = z.string({ error: REDIS_URL_HINT }).refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'redis:' || u.protocol === 'rediss:') && !!u.hostname && /^(\/\d*)?$/.test(u.pathname);
  } catch {
    return false;
  }
}, REDIS_URL_HINT);

/** ioredis options for a checked queue URL. */
export function redisConnection(url: string): ConnectionOptions & { host: string; port: number } {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** The URL without its password, for logs and the page. */
export function redisLabel(url: string): string {
  const u = new URL(url);
  u.password = '';
  u.username = '';
  return u.toString().replace(/\/$/, '');
}

/** A BullMQ job's data: the job's id in the front server, the model by name, and its settings. */
export const boxJobSchema = z.object({ jobId: z.string().regex(/^[a-z0-9]{16}$/), model: z.string(), settings: jobSettingsSchema });
export type BoxJob = z.infer<typeof boxJobSchema>;

export const previewMessageSchema = z.object({ jobId: z.string().max(64), url: z.string().startsWith('data:image/jpeg;base64,').max(2_000_000) });

/** The headers a box sends with every request to the front server about a job. */
export const BOX_HEADERS = { box: 'x-svd-box', worker: 'x-svd-worker', lock: 'x-svd-lock' } as const;

/** The upload field of a job's last frame (a PNG at the job's size), which a box sends beside the videos. */
export const LAST_FRAME_FIELD = 'lastFrame';

/** What a box uploads beside the videos (the `result` field). */
export const boxResultSchema = z.object(
  {
    /** Frames the job made (its segments joined and interpolated; before ping-pong and loops). */
    frameCount: z.number().int().positive().max(65_536),
    fps: z.number().positive().max(1000),
    seed: z.number().int(),
    /** Each segment's seed, when the job had several. */
    seeds: z.array(z.number().int()).max(8).optional(),
    provider: z.string().max(200),
    totalMs: z.number().nonnegative(),
  },
  { error: 'must be a JSON object {frameCount, fps, seed, seeds?, provider, totalMs}' },
);
export type BoxResult = z.infer<typeof boxResultSchema>;

/** Why BullMQ failed a job, in the user's words where BullMQ's are its own. */
export function failedReasonInWords(reason: string): string {
  if (/stalled more than allowable limit/i.test(reason)) {
    return 'the worker boxes running this job stopped answering (killed, or cut off from Redis) twice; its input and settings are kept: run it again';
  }
  return reason;
}

// Generation settings as users give them (CLI flags, the page's form, the API's JSON), checked with
// zod: each field once, with its default, its range and a plain message (common/messages.ts puts
// the field's name in front of it). Browser-safe: the page validates with this very schema.
import { z } from 'zod';
import { resizeModes } from './framing.js';
import { formatError, type NameOf } from './messages.js';
import { videoFormats } from './video-formats.js';

/** Seeds are integers the generator (models/pipeline/random.ts) can hold exactly. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;
/** Custom schedules stay in a range float32 sampling handles (SVD's own maximum is 700). */
const MAX_SIGMA = 5000;

/** A whole number in [min, max]; an empty or non-numeric value reads as out of range. */
const whole = (min: number, max: number) => {
  const error = `must be ${min}–${max}`;
  return z
    .number({ error })
    .int({ error: `must be a whole number, ${min}–${max}` })
    .min(min, { error })
    .max(max, { error });
};
const decimal = (min: number, max: number) => {
  const error = `must be ${min}–${max}`;
  return z.number({ error }).min(min, { error }).max(max, { error });
};
const seedNumber = () => {
  const error = 'must be a whole number from 0 to 2^53 − 1';
  return z.number({ error }).int({ error }).min(0, { error }).max(MAX_SEED, { error });
};
const side = () => {
  const error = 'must be a multiple of 64, 64–2048';
  return z.number({ error }).int({ error }).positive({ error }).multipleOf(64, { error }).max(2048, { error });
};

export const generationSettingsSchema = z
  .object({
    width: side().default(1024),
    height: side().default(576),
    resize: z.enum(resizeModes, { error: `must be one of ${resizeModes.join(', ')}` }).default('crop'),
    cropX: decimal(0, 1).default(0.5),
    cropY: decimal(0, 1).default(0.5),
    /** Frames to generate; defaults to the UNet's trained count (25 for SVD-XT, 14 for SVD). */
    frames: whole(1, 128).optional(),
    steps: whole(1, 200).default(25),
    /** Custom σ list used verbatim instead of the Karras schedule (include a trailing 0); one step per σ but the last. */
    sigmas: z
      .array(z.number().nonnegative().max(MAX_SIGMA, `each sigma must be at most ${MAX_SIGMA} (SVD was trained up to 700)`))
      .min(2)
      .max(201, 'at most 201 sigmas (200 steps and the final one)')
      .refine((s) => s.every((v, i) => i === 0 || v < s[i - 1]!), 'sigmas must be strictly decreasing')
      .refine((s) => s.slice(0, -1).every((v) => v > 0), 'only the last sigma may be 0')
      .optional(),
    /** Frames per second of the video; the model is conditioned on fps − 1 as in diffusers. */
    fps: whole(1, 60).default(7),
    motionBucket: whole(0, 1023).default(127),
    noiseAug: decimal(0, 10).default(0.02),
    minGuidance: decimal(0, 30).default(1),
    maxGuidance: decimal(0, 30).default(3),
    /** Frames decoded together; fewer use less memory and flicker slightly more. */
    decodeChunk: whole(1, 128).default(8),
    seed: seedNumber().optional(),
    /** Segments made one after another, each from the last frame of the one before (1: a single clip). */
    extend: whole(1, 8).default(1),
    /** Frames made by the frame interpolator for each pair plus one (1: none); the video's fps is multiplied by it. */
    interpolate: z
      .number({ error: 'must be 1, 2, 4 or 8' })
      .refine((k) => [1, 2, 4, 8].includes(k), 'must be 1, 2, 4 or 8')
      .default(1),
  })
  .refine((s) => s.maxGuidance >= s.minGuidance, { message: 'must be at least {minGuidance}', path: ['maxGuidance'] });

export type GenerationSettingsInput = z.input<typeof generationSettingsSchema>;
export type GenerationSettings = z.output<typeof generationSettingsSchema>;

/** Settings a client sends for a job: generation settings plus what to do with the result. */
export const jobSettingsSchema = generationSettingsSchema
  .and(
    z.object({
      formats: z
        .array(z.enum(videoFormats, { error: `must be among ${videoFormats.join(', ')}` }))
        .min(1, { error: `needs at least one of ${videoFormats.join(', ')}` })
        .refine((f) => new Set(f).size === f.length, 'name each format once')
        .default(['mp4']),
      /** Times the clip repeats inside the file (1 = once). */
      loops: whole(1, 10).default(1),
      pingPong: z.boolean({ error: 'must be true or false' }).default(false),
      /** Copy the result to the server's save folder (Drive), when one is set. */
      saveToFolder: z.boolean({ error: 'must be true or false' }).default(true),
      /** Which installed model to run (GET /api/health lists them); the server's default when absent. */
      model: z.string().max(200).optional(),
      /** Videos of the same image and settings, each an ordinary job, with seeds seed, seed + 1, …. */
      variations: whole(1, 8).default(1),
    }),
  )
  .refine((s) => s.seed === undefined || s.seed <= MAX_SEED - (s.variations - 1), {
    message: 'must leave room for {variations} consecutive seeds (at most 2^53 − 1 in all)',
    path: ['seed'],
  });
export type JobSettingsInput = z.input<typeof jobSettingsSchema>;
export type JobSettings = z.output<typeof jobSettingsSchema>;
export type SettingKey = keyof JobSettings;

/** What the page calls each setting (its form labels, messages and settings lists). */
export const settingLabels: Record<SettingKey, string> = {
  width: 'Width',
  height: 'Height',
  resize: 'Resize',
  cropX: 'Crop position x',
  cropY: 'Crop position y',
  frames: 'Frames',
  steps: 'Steps',
  sigmas: 'Sigmas',
  fps: 'FPS',
  motionBucket: 'Motion',
  noiseAug: 'Augmentation',
  minGuidance: 'Min guidance',
  maxGuidance: 'Max guidance',
  decodeChunk: 'Decode chunk',
  seed: 'Seed',
  extend: 'Segments',
  interpolate: 'Interpolation',
  variations: 'Variations',
  formats: 'Output',
  loops: 'Loops',
  pingPong: 'Ping-pong',
  saveToFolder: 'Save to folder',
  model: 'Model',
};

/**
 * The tiny demo model (random weights) runs with these instead of the full-size defaults, which
 * would take minutes on a CPU to make noise; this takes a few seconds.
 */
export const demoDefaults = { width: 256, height: 128, steps: 8 } as const satisfies GenerationSettingsInput;

/**
 * What a consistency-distilled model (AnimateLCM-SVD-xt, "Fast (4 steps)") needs instead of the
 * full-size defaults: the reference app's settings (G-U-N/AnimateLCM animatelcm_svd/app.py). Its
 * fps stays 7: the app conditions the model on the pipeline's default (7) and only writes the file
 * at 8, and one setting here does both.
 */
export const fastModelDefaults = { steps: 4, minGuidance: 1, maxGuidance: 1.2, motionBucket: 80 } as const satisfies GenerationSettingsInput;

export function parseSettings(input: GenerationSettingsInput, nameOf?: NameOf): GenerationSettings {
  const r = generationSettingsSchema.safeParse(input);
  if (!r.success) throw new SettingsError(formatError(r.error, nameOf));
  return r.data;
}

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

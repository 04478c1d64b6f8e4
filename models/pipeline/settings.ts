// Generation settings as users give them (CLI flags, the page's form), checked with zod.
import { z } from 'zod';
import { MAX_SEED } from './random.js';
import { resizeModes } from './framing.js';

/** Custom schedules stay in a range float32 sampling handles (SVD's own maximum is 700). */
const MAX_SIGMA = 5000;

export const generationSettingsSchema = z
  .object({
    width: z.number().int().positive().multipleOf(64, 'width must be a multiple of 64').max(2048).default(1024),
    height: z.number().int().positive().multipleOf(64, 'height must be a multiple of 64').max(2048).default(576),
    resize: z.enum(resizeModes).default('crop'),
    cropX: z.number().min(0).max(1).default(0.5),
    cropY: z.number().min(0).max(1).default(0.5),
    /** Frames to generate; defaults to the UNet's trained count (25 for SVD-XT, 14 for SVD). */
    frames: z.number().int().min(1).max(128).optional(),
    steps: z.number().int().min(1).max(200).default(25),
    /** Custom σ list used verbatim instead of the Karras schedule (include a trailing 0); one step per σ but the last. */
    sigmas: z
      .array(z.number().nonnegative().max(MAX_SIGMA, `each sigma must be at most ${MAX_SIGMA} (SVD was trained up to 700)`))
      .min(2)
      .max(201, 'at most 201 sigmas (200 steps and the final one)')
      .refine((s) => s.every((v, i) => i === 0 || v < s[i - 1]!), 'sigmas must be strictly decreasing')
      .refine((s) => s.slice(0, -1).every((v) => v > 0), 'only the last sigma may be 0')
      .optional(),
    /** Frames per second of the video; the model is conditioned on fps − 1 as in diffusers. */
    fps: z.number().int().min(1).max(60).default(7),
    motionBucket: z.number().int().min(0).max(1023).default(127),
    noiseAug: z.number().min(0).max(10).default(0.02),
    minGuidance: z.number().min(0).max(30).default(1),
    maxGuidance: z.number().min(0).max(30).default(3),
    /** Frames decoded together; fewer use less memory and flicker slightly more. */
    decodeChunk: z.number().int().min(1).max(128).default(8),
    seed: z.number().int().min(0).max(MAX_SEED).optional(),
  })
  .refine((s) => s.maxGuidance >= s.minGuidance, { message: 'maxGuidance must be at least minGuidance', path: ['maxGuidance'] });

export type GenerationSettingsInput = z.input<typeof generationSettingsSchema>;
export type GenerationSettings = z.output<typeof generationSettingsSchema>;

export function parseSettings(input: GenerationSettingsInput): GenerationSettings {
  const r = generationSettingsSchema.safeParse(input);
  if (!r.success) throw new SettingsError(r.error.issues.map((i) => `${i.path.join('.') || 'settings'}: ${i.message}`).join('; '));
  return r.data;
}

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

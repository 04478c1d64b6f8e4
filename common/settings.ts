// Every job setting once (common/setting-table.ts says how a row is written and what is made from
// it): the server's schema and messages, the page's form, the CLI's flags and `generate --help`,
// and the benchmarks' defaults all come from SETTINGS. Browser-safe: the page validates with this
// very schema. The order of the rows is the order of the form and of --help.
import { z } from 'zod';
import { resizeModes } from './framing.js';
import { formatError, type NameOf } from './messages.js';
import { decimal, entries, group, multipleOf, oneOf, oneOfNumbers, optional, rowsFor, schemaOf, setting, someOf, text, toNumber, whole, yesNo, type CrossCheck, type Kind } from './setting-table.js';
import { interpolationFactors } from './video-chain.js';
import { videoFormats } from './video-formats.js';

/** Seeds are integers the generator (models/pipeline/random.ts) can hold exactly. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;
/** Custom schedules stay in a range float32 sampling handles (SVD's own maximum is 700). */
const MAX_SIGMA = 5000;

const sigmaList = {
  schema: z
    .array(z.number().nonnegative().max(MAX_SIGMA, `each sigma must be at most ${MAX_SIGMA} (SVD was trained up to 700)`))
    .min(2)
    .max(201, 'at most 201 sigmas (200 steps and the final one)')
    .refine((s) => s.every((v, i) => i === 0 || v < s[i - 1]!), 'sigmas must be strictly decreasing')
    .refine((s) => s.slice(0, -1).every((v) => v > 0), 'only the last sigma may be 0'),
  range: `2–201 decreasing values up to ${MAX_SIGMA}, the last may be 0`,
  fromText: (t) => t.split(',').map(toNumber),
  metavar: '700,...,0',
} satisfies Kind;

export const SETTINGS = {
  model: optional({
    kind: text(200),
    absent: "the server's first model",
    label: 'Model',
    help: 'which installed model runs the job (GET /api/health lists them)',
    control: 'model',
    level: 'common',
    use: 'job',
  }),
  motionBucket: setting({
    kind: whole(0, 1023),
    default: 127,
    label: 'Motion',
    help: "how much the scene moves: SVD's motion bucket id, trained at 127",
    flag: 'motion-bucket',
    control: 'number',
    level: 'common',
    use: 'sampling',
  }),
  frames: optional({
    kind: whole(1, 128),
    absent: "the model's trained count: 25 for SVD-XT, 14 for SVD",
    label: 'Frames',
    help: 'frames to generate; counts other than the trained one work less well',
    flag: 'frames',
    control: 'number',
    level: 'common',
    use: 'sampling',
  }),
  fps: setting({
    kind: whole(1, 60),
    default: 7,
    label: 'FPS',
    help: 'frames per second of the video; the model is told fps − 1, as in diffusers',
    flag: 'fps',
    control: 'number',
    level: 'common',
    use: 'sampling',
  }),
  seed: optional({
    kind: whole(0, MAX_SEED),
    absent: 'random',
    blank: 'random',
    label: 'Seed',
    help: 'same seed + same settings = same video',
    flag: 'seed',
    control: 'number',
    level: 'common',
    use: 'sampling',
  }),
  framing: group({
    label: 'Framing',
    help: 'how the image is brought to the size',
    control: 'crop',
    level: 'common',
    use: 'framing',
    fields: {
      mode: setting({
        kind: oneOf(resizeModes),
        default: 'crop',
        label: 'Resize',
        help: 'crop: fill the frame and cut what is over; fit: letterbox; stretch: distort',
        flag: 'resize',
        control: 'crop',
        level: 'common',
        use: 'framing',
      }),
      x: setting({
        kind: decimal(0, 1),
        default: 0.5,
        label: 'Crop position x',
        help: 'where the crop window sits across: 0 left edge, 0.5 centre, 1 right edge',
        flag: 'crop-x',
        control: 'crop',
        level: 'common',
        use: 'framing',
      }),
      y: setting({
        kind: decimal(0, 1),
        default: 0.5,
        label: 'Crop position y',
        help: 'where the crop window sits down: 0 top, 0.5 centre, 1 bottom',
        flag: 'crop-y',
        control: 'crop',
        level: 'common',
        use: 'framing',
      }),
    },
  }),
  width: setting({
    kind: multipleOf(64, 2048),
    default: 1024,
    label: 'Width',
    help: 'video width in pixels; SVD was trained on 1024',
    flag: 'width',
    control: 'number',
    level: 'advanced',
    use: 'framing',
  }),
  height: setting({
    kind: multipleOf(64, 2048),
    default: 576,
    label: 'Height',
    help: 'video height in pixels; 576, or 1024 for portrait',
    flag: 'height',
    control: 'number',
    level: 'advanced',
    use: 'framing',
  }),
  steps: setting({
    kind: whole(1, 200),
    default: 25,
    label: 'Steps',
    help: 'sampling steps: more is slower, 25 is the reference',
    flag: 'steps',
    control: 'number',
    level: 'advanced',
    use: 'sampling',
  }),
  sigmas: optional({
    kind: sigmaList,
    absent: 'the Karras schedule of --steps',
    label: 'Sigmas',
    help: 'a noise schedule used as given instead of the Karras one: one step per sigma but the last',
    flag: 'sigmas',
    control: 'none',
    level: 'advanced',
    use: 'sampling',
  }),
  noiseAug: setting({
    kind: decimal(0, 10),
    default: 0.02,
    label: 'Augmentation',
    help: 'noise added to the image before it conditions the video: freer motion, less likeness',
    flag: 'noise-aug',
    control: 'decimal',
    level: 'advanced',
    use: 'sampling',
  }),
  minGuidance: setting({
    kind: decimal(0, 30),
    default: 1,
    label: 'Min guidance',
    help: 'classifier-free guidance on the first frame',
    flag: 'min-guidance',
    control: 'decimal',
    level: 'advanced',
    use: 'sampling',
  }),
  maxGuidance: setting({
    kind: decimal(0, 30),
    default: 3,
    label: 'Max guidance',
    help: 'guidance on the last frame (it rises linearly from the first); ≤ 1 turns guidance off',
    flag: 'max-guidance',
    control: 'decimal',
    level: 'advanced',
    use: 'sampling',
  }),
  decodeChunk: setting({
    kind: whole(1, 128),
    default: 8,
    label: 'Decode chunk',
    help: 'frames decoded together: fewer use less memory and flicker slightly more',
    flag: 'decode-chunk',
    control: 'number',
    level: 'advanced',
    use: 'sampling',
  }),
  extend: setting({
    kind: whole(1, 8),
    default: 1,
    label: 'Segments',
    help: 'clips in a row, each from the last frame of the one before: N clips of F frames give N·F − (N − 1) frames',
    flag: 'extend',
    control: 'number',
    level: 'common',
    use: 'chain',
  }),
  interpolate: setting({
    kind: oneOfNumbers(interpolationFactors),
    default: 1,
    label: 'Interpolation',
    help: 'K − 1 new frames between each pair (RIFE), fps × K; needs npm run setup -- --interpolator rife',
    flag: 'interpolate',
    control: 'number',
    level: 'common',
    use: 'chain',
  }),
  variations: setting({
    kind: whole(1, 8),
    default: 1,
    label: 'Variations',
    help: 'videos of the same image and settings with seeds seed, seed + 1, …, each its own job',
    flag: 'variations',
    control: 'number',
    level: 'common',
    use: 'job',
  }),
  loops: setting({
    kind: whole(1, 10),
    default: 1,
    label: 'Loops',
    help: 'times the clip repeats in the file',
    control: 'number',
    level: 'advanced',
    use: 'output',
  }),
  formats: setting({
    kind: someOf(videoFormats, 'format'),
    default: ['mp4'],
    label: 'Output',
    help: 'the video files to write',
    control: 'choices',
    level: 'advanced',
    use: 'output',
  }),
  pingPong: setting({
    kind: yesNo(),
    default: false,
    label: 'Ping-pong',
    help: 'plays the clip forward, then back',
    control: 'toggle',
    level: 'advanced',
    use: 'output',
  }),
  saveToFolder: setting({
    kind: yesNo(),
    default: true,
    label: 'Save to folder',
    help: "copy the result to the server's save folder (Drive), when one is set",
    control: 'toggle',
    level: 'advanced',
    use: 'output',
  }),
};
export type SettingsTable = typeof SETTINGS;

/** Rules over several settings; each schema made from the table checks those whose settings it holds. */
export const CROSS_CHECKS: readonly CrossCheck[] = [
  { keys: ['minGuidance', 'maxGuidance'], ok: (s) => (s.maxGuidance as number) >= (s.minGuidance as number), at: 'maxGuidance', message: 'must be at least {minGuidance}' },
  {
    keys: ['seed', 'variations'],
    ok: (s) => s.seed === undefined || (s.seed as number) <= MAX_SEED - ((s.variations as number) - 1),
    at: 'seed',
    message: 'must leave room for {variations} consecutive seeds (the largest seed is 9007199254740991)',
  },
];

/** What brings the image to the generation size: width, height and framing. */
export const frameTargetSchema = schemaOf(rowsFor(SETTINGS, ['framing']), CROSS_CHECKS);
/** What the pipeline takes (diffusers' `__call__` arguments, the image's size aside). */
const samplingSettingsSchema = schemaOf(rowsFor(SETTINGS, ['sampling']), CROSS_CHECKS);
/** What an inference worker takes: the framing of the image, the sampling and the chain around it. */
export const generationSettingsSchema = schemaOf(rowsFor(SETTINGS, ['framing', 'sampling', 'chain']), CROSS_CHECKS);
const allSettingsSchema = schemaOf(SETTINGS, CROSS_CHECKS);

/**
 * Job records written before framing was one nested setting hold `resize`, `cropX` and `cropY`;
 * they are read into `framing` (and API users who still send them are understood).
 */
function liftFlatFraming(raw: unknown): unknown {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const { resize, cropX, cropY, ...rest } = raw as Record<string, unknown>;
  if (resize === undefined && cropX === undefined && cropY === undefined) return raw;
  const nested = rest.framing ?? {};
  if (typeof nested !== 'object' || Array.isArray(nested)) return raw;
  return { ...rest, framing: { ...nested, ...(resize !== undefined && { mode: resize }), ...(cropX !== undefined && { x: cropX }), ...(cropY !== undefined && { y: cropY }) } };
}

/** Everything a client sends for a job: generation settings plus what to do with the result. */
export const jobSettingsSchema = z.preprocess(liftFlatFraming, allSettingsSchema);

export type FrameTarget = z.input<typeof frameTargetSchema>;
export type SamplingSettings = z.output<typeof samplingSettingsSchema>;
export type GenerationSettingsInput = z.input<typeof generationSettingsSchema>;
export type GenerationSettings = z.output<typeof generationSettingsSchema>;
export type JobSettingsInput = z.input<typeof allSettingsSchema>;
export type JobSettings = z.output<typeof allSettingsSchema>;
export type Framing = JobSettings['framing'];

/** Every setting at its default (the optional ones absent). */
export const DEFAULTS: JobSettings = jobSettingsSchema.parse({});

const labels = new Map(entries(SETTINGS).map((e) => [e.key, e.setting.label]));
/** What people call each setting, by its key ("frames", "framing.x"): the page's labels and messages. */
export const labelOf: NameOf = (key) => labels.get(key) ?? key;

/** A job's settings as [label, value] pairs in the table's order, for lists people read. */
export function settingsList(s: JobSettings): [string, string][] {
  const out: [string, string][] = [];
  for (const e of entries(SETTINGS)) {
    const value = e.path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], s);
    if (value === undefined) continue;
    out.push([e.setting.label, Array.isArray(value) ? value.join(', ') : typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value)]);
  }
  return out;
}

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

/** What a model starts with where the table's defaults do not suit it (the page and the CLI alike). */
export function modelDefaults(model: { demo?: boolean; fast?: boolean } | undefined): Partial<GenerationSettingsInput> {
  return { ...(model?.demo ? demoDefaults : {}), ...(model?.fast ? fastModelDefaults : {}) };
}

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

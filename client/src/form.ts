// The settings form as data: what the user typed (kept as typed, so an emptied field stays empty),
// its defaults from the shared schema, the settings it sends, and plain messages per field from
// the same schema the server checks with.
import { z } from 'zod';
import { resizeModes, type ResizeMode } from '../../common/framing.js';
import { fieldMessages } from '../../common/messages.js';
import { demoDefaults, fastModelDefaults, jobSettingsSchema, settingLabels, type JobSettings, type JobSettingsInput, type SettingKey } from '../../common/settings.js';
import { videoFormats } from '../../common/video-formats.js';

const text = z.string();
export const formSchema = z.object({
  motionBucket: text,
  frames: text,
  fps: text,
  /** Empty: a random seed. */
  seed: text,
  width: text,
  height: text,
  steps: text,
  noiseAug: text,
  minGuidance: text,
  maxGuidance: text,
  /** 'auto': chosen from free GPU memory. */
  decodeChunk: text,
  loops: text,
  // Absent in forms saved before these settings existed: 1, as the schema's defaults.
  extend: text.default('1'),
  interpolate: text.default('1'),
  variations: text.default('1'),
  formats: z.array(z.enum(videoFormats)),
  pingPong: z.boolean(),
  saveToFolder: z.boolean(),
  /** An installed model's name; the server's first model when absent. */
  model: z.string().optional(),
});
export type FormValues = z.infer<typeof formSchema>;
export type TextField = { [K in keyof FormValues]: FormValues[K] extends string ? K : never }[keyof FormValues] & SettingKey;

export const framingSchema = z.object({ mode: z.enum(resizeModes), x: z.number().min(0).max(1), y: z.number().min(0).max(1) });
export type Framing = { mode: ResizeMode; x: number; y: number };

export interface ModelChoice {
  name: string;
  demo: boolean;
  frames: number;
  /** AnimateLCM: its own steps, guidance and motion (fastModelDefaults). */
  fast?: boolean;
  /** Whether a frame interpolator is installed for its jobs. */
  interpolator?: boolean;
}

const schemaDefaults: JobSettings = jobSettingsSchema.parse({});

/** The size and steps a model starts with: the reference values, or seconds-long ones for the demo model. */
function sizeDefaults(model: ModelChoice | undefined): Pick<FormValues, 'width' | 'height' | 'steps'> {
  const d = { ...schemaDefaults, ...(model?.demo ? demoDefaults : {}), ...(model?.fast ? { steps: fastModelDefaults.steps } : {}) };
  return { width: String(d.width), height: String(d.height), steps: String(d.steps) };
}

/** What the model's sampler needs: the reference values, or a consistency model's own. */
function samplerDefaults(model: ModelChoice | undefined): Pick<FormValues, 'steps' | 'minGuidance' | 'maxGuidance' | 'motionBucket'> {
  const d = model?.fast ? { ...schemaDefaults, ...fastModelDefaults } : { ...schemaDefaults, ...(model?.demo ? { steps: demoDefaults.steps } : {}) };
  return { steps: String(d.steps), minGuidance: String(d.minGuidance), maxGuidance: String(d.maxGuidance), motionBucket: String(d.motionBucket) };
}

export function defaultValues(model: ModelChoice | undefined): FormValues {
  const d = schemaDefaults;
  return {
    frames: String(model?.frames ?? 25),
    fps: String(d.fps),
    seed: '',
    ...sizeDefaults(model),
    ...samplerDefaults(model),
    noiseAug: String(d.noiseAug),
    decodeChunk: 'auto',
    loops: String(d.loops),
    extend: String(d.extend),
    interpolate: String(d.interpolate),
    variations: String(d.variations),
    formats: d.formats,
    pingPong: d.pingPong,
    saveToFolder: d.saveToFolder,
    model: model?.name,
  };
}

/** What the model picker calls a model. */
export function modelLabel(m: ModelChoice): string {
  if (m.demo) return `Demo (random weights, ${m.frames} frames${m.fast ? ', 4 steps' : ''})`;
  if (m.fast) return `Fast (4 steps) · ${m.name}`;
  return m.frames === 25 ? `SVD-XT (25 frames) · ${m.name}` : m.frames === 14 ? `SVD (14 frames) · ${m.name}` : `${m.name} (${m.frames} frames)`;
}

/** Another model: its frame count, its kind of size when moving between the demo and a real model, its sampler's settings when moving to or from a fast one. */
export function withModel(v: FormValues, from: ModelChoice | undefined, to: ModelChoice): FormValues {
  return {
    ...v,
    model: to.name,
    frames: String(to.frames),
    ...(from?.demo !== to.demo ? sizeDefaults(to) : {}),
    ...(!!from?.fast !== !!to.fast ? samplerDefaults(to) : {}),
  };
}

/** A finished job's settings back in the form (its seed included, so the same video comes out). */
export function fromSettings(s: JobSettings, seed: number | undefined): FormValues {
  return {
    motionBucket: String(s.motionBucket),
    frames: s.frames === undefined ? '' : String(s.frames),
    fps: String(s.fps),
    seed: seed === undefined ? '' : String(seed),
    width: String(s.width),
    height: String(s.height),
    steps: String(s.steps),
    noiseAug: String(s.noiseAug),
    minGuidance: String(s.minGuidance),
    maxGuidance: String(s.maxGuidance),
    decodeChunk: String(s.decodeChunk),
    loops: String(s.loops),
    extend: String(s.extend),
    interpolate: String(s.interpolate),
    variations: String(s.variations),
    formats: s.formats,
    pingPong: s.pingPong,
    saveToFolder: s.saveToFolder,
    model: s.model,
  };
}

/** '' and anything that is not a number become NaN, which the schema reports as out of range. */
const num = (s: string) => (s.trim() === '' ? Number.NaN : Number(s));
const wholeIn = (s: string, min: number, max: number) => {
  const n = num(s);
  return Number.isInteger(n) && n >= min && n <= max ? n : undefined;
};

/** About 1.2 GB per frame at 1024x576 in fp16; capped by the frame count (8 when that is not valid yet). */
export function autoDecodeChunk(v: FormValues, gpuFreeMiB: number | undefined): number {
  const frames = wholeIn(v.frames, 1, 128) ?? 8;
  if (!gpuFreeMiB) return Math.min(frames, 8);
  const pixels = (wholeIn(v.width, 64, 2048) ?? 1024) * (wholeIn(v.height, 64, 2048) ?? 576);
  const perFrameMiB = (1200 * pixels) / (1024 * 576);
  return Math.max(1, Math.min(frames, Math.floor((gpuFreeMiB * 0.6) / perFrameMiB)));
}

export function toSettings(v: FormValues, framing: Framing, autoChunk: number): JobSettingsInput {
  return {
    width: num(v.width),
    height: num(v.height),
    resize: framing.mode,
    cropX: framing.x,
    cropY: framing.y,
    frames: num(v.frames),
    steps: num(v.steps),
    fps: num(v.fps),
    motionBucket: num(v.motionBucket),
    noiseAug: num(v.noiseAug),
    minGuidance: num(v.minGuidance),
    maxGuidance: num(v.maxGuidance),
    decodeChunk: v.decodeChunk.trim().toLowerCase() === 'auto' ? autoChunk : num(v.decodeChunk),
    ...(v.seed.trim() === '' ? {} : { seed: num(v.seed) }),
    formats: v.formats,
    loops: num(v.loops),
    extend: num(v.extend),
    interpolate: num(v.interpolate),
    variations: num(v.variations),
    pingPong: v.pingPong,
    saveToFolder: v.saveToFolder,
    ...(v.model ? { model: v.model } : {}),
  };
}

export const labelOf = (key: string) => settingLabels[key as SettingKey] ?? key;

/** Field → the message to show next to it ("Frames must be 1–128"), from the server's own schema. */
export function validate(v: FormValues, framing: Framing, autoChunk: number): Partial<Record<SettingKey, string>> {
  const r = jobSettingsSchema.safeParse(toSettings(v, framing, autoChunk));
  return r.success ? {} : fieldMessages(r.error, labelOf);
}

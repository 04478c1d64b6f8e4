// The settings form as data, made from the settings table (common/settings.ts): its fields, what the
// user typed (kept as typed, so an emptied field stays empty), its defaults, the settings it
// sends, and plain messages per field from the same schema the server checks with.
import { z } from 'zod';
import { fieldMessages } from '../../common/messages.js';
import { entries, toNumber, type Control, type Level, type SettingTable } from '../../common/setting-table.js';
import {
  demoDefaults,
  fastModelDefaults,
  jobSettingsSchema,
  labelOf,
  modelDefaults,
  SETTINGS,
  type Framing,
  type JobSettings,
  type JobSettingsInput,
  type SettingsTable,
} from '../../common/settings.js';

/** One field of the form: a setting the page shows with its own control (the crop is the image input's). */
export interface FormField {
  /** The setting's key, with dots inside a group. */
  key: string;
  path: string[];
  label: string;
  /** What it does (the text under the field while it is right). */
  hint: string;
  control: Exclude<Control, 'crop' | 'none'>;
  level: Level;
  /** The empty field's placeholder, where empty means "not given". */
  blank?: string;
  /** A `choices` field's values. */
  options: readonly string[];
  /** The typed text as a value for the schema (kinds say how: a number, a list, …). */
  fromText: (text: string) => unknown;
}

export function formFields(table: SettingTable): FormField[] {
  return entries(table).flatMap(({ key, path, setting: s }) =>
    s.control === 'crop' || s.control === 'none'
      ? []
      : [{ key, path, label: s.label, hint: s.help, control: s.control, level: s.level, blank: s.blank, options: s.kind.options ?? [], fromText: s.kind.fromText }],
  );
}

export const FORM_FIELDS = formFields(SETTINGS);

/** What each control holds while the user edits it. */
type FormValueOf<R> = R extends { control: 'number' | 'decimal' }
  ? string
  : R extends { control: 'toggle' }
    ? boolean
    : R extends { control: 'choices'; schema: infer S extends z.ZodType }
      ? NonNullable<z.output<S>>
      : R extends { control: 'model' }
        ? string | undefined
        : never;
export type FormValues = { [K in keyof SettingsTable as FormValueOf<SettingsTable[K]> extends never ? never : K]: FormValueOf<SettingsTable[K]> };

const heldAs: Record<FormField['control'], z.ZodType> = {
  number: z.string(),
  decimal: z.string(),
  toggle: z.boolean(),
  // Checked against the settings' schema when sent, like the typed text: a stored list is kept as it was.
  choices: z.array(z.string()),
  model: z.string().optional(),
};
/** The form's values as they are kept between visits (persist.ts). */
export const formSchema = z.object(Object.fromEntries(FORM_FIELDS.map((f) => [f.key, heldAs[f.control]]))) as unknown as z.ZodType<FormValues>;
export const framingSchema = SETTINGS.framing.schema;

export interface ModelChoice {
  name: string;
  demo: boolean;
  frames: number;
  /** AnimateLCM: its own steps, guidance and motion (fastModelDefaults). */
  fast?: boolean;
  /** Whether a frame interpolator is installed for its jobs. */
  interpolator?: boolean;
}

const get = (o: unknown, path: string[]) => path.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], o);
function put(o: Record<string, unknown>, path: string[], value: unknown): void {
  let into = o;
  for (const k of path.slice(0, -1)) into = (into[k] ??= {}) as Record<string, unknown>;
  into[path.at(-1)!] = value;
}
const field = (v: FormValues, key: string) => (v as unknown as Record<string, unknown>)[key];

/** A finished job's settings back in the form (its seed included, so the same video comes out). */
export function fromSettings(s: JobSettings, seed: number | undefined): FormValues {
  const out: Record<string, unknown> = {};
  for (const f of FORM_FIELDS) {
    const value = f.key === 'seed' ? seed : get(s, f.path);
    out[f.key] = f.control === 'number' || f.control === 'decimal' ? (value === undefined ? '' : String(value)) : value;
  }
  return out as FormValues;
}

/** A model's starting values: the table's defaults, the model's own where it has them, its frame count, decode chunk "auto". */
export function defaultValues(model: ModelChoice | undefined): FormValues {
  const d = jobSettingsSchema.parse({ ...modelDefaults(model), frames: model?.frames ?? 25, model: model?.name });
  return { ...fromSettings(d, undefined), decodeChunk: 'auto' };
}

/** What the model picker calls a model. */
export function modelLabel(m: ModelChoice): string {
  if (m.demo) return `Demo (random weights, ${m.frames} frames${m.fast ? ', 4 steps' : ''})`;
  if (m.fast) return `Fast (4 steps) · ${m.name}`;
  return m.frames === 25 ? `SVD-XT (25 frames) · ${m.name}` : m.frames === 14 ? `SVD (14 frames) · ${m.name}` : `${m.name} (${m.frames} frames)`;
}

/**
 * Another model: its frame count; the demo's size and steps when moving to or from the demo, the
 * sampler's settings when moving to or from a 4-step model; the user's other values stay.
 */
export function withModel(v: FormValues, from: ModelChoice | undefined, to: ModelChoice): FormValues {
  const fresh = defaultValues(to);
  const reset = [...(!!from?.demo !== !!to.demo ? Object.keys(demoDefaults) : []), ...(!!from?.fast !== !!to.fast ? Object.keys(fastModelDefaults) : [])];
  return { ...v, ...Object.fromEntries(reset.map((k) => [k, field(fresh, k)])), model: to.name, frames: String(to.frames) };
}

const wholeIn = (s: string, min: number, max: number) => {
  const n = toNumber(s);
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
  const out: Record<string, unknown> = { framing };
  for (const f of FORM_FIELDS) {
    const value = field(v, f.key);
    if (f.control === 'number' || f.control === 'decimal') {
      const typed = value as string;
      if (f.key === 'decodeChunk' && typed.trim().toLowerCase() === 'auto') put(out, f.path, autoChunk);
      else if (!(f.blank && typed.trim() === '')) put(out, f.path, f.fromText(typed));
    } else if (value !== undefined && value !== '') put(out, f.path, value);
  }
  return out as JobSettingsInput;
}

/** Field → the message to show next to it ("Frames must be 1–128"), from the server's own schema. */
export function validate(v: FormValues, framing: Framing, autoChunk: number): Partial<Record<string, string>> {
  const r = jobSettingsSchema.safeParse(toSettings(v, framing, autoChunk));
  return r.success ? {} : fieldMessages(r.error, labelOf);
}

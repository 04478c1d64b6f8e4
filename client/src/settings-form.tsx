// Generation settings with the reference defaults, a one-line hint each, and the server's own
// zod schema explaining invalid values next to the field.
import { generationSettingsSchema } from '../../models/pipeline/settings.js';

export interface FormValues {
  width: number;
  height: number;
  frames: number;
  steps: number;
  motionBucket: number;
  fps: number;
  noiseAug: number;
  seed: string;
  decodeChunk: string;
  minGuidance: number;
  maxGuidance: number;
  formats: string[];
  saveToFolder: boolean;
}

export const defaultValues = (frames: number): FormValues => ({
  width: 1024,
  height: 576,
  frames,
  steps: 25,
  motionBucket: 127,
  fps: 7,
  noiseAug: 0.02,
  seed: '',
  decodeChunk: 'auto',
  minGuidance: 1,
  maxGuidance: 3,
  formats: ['mp4'],
  saveToFolder: true,
});

/** Picks a decode chunk from free GPU memory: about 1.2 GB per frame at 1024x576 in fp16. */
export function autoDecodeChunk(frames: number, gpuFreeMiB: number | undefined, pixels: number): number {
  if (!gpuFreeMiB) return Math.min(frames, 8);
  const perFrameMiB = (1200 * pixels) / (1024 * 576);
  return Math.max(1, Math.min(frames, Math.floor((gpuFreeMiB * 0.6) / perFrameMiB)));
}

export function toSettings(v: FormValues, autoChunk: number) {
  return {
    width: v.width,
    height: v.height,
    frames: v.frames,
    steps: v.steps,
    motionBucket: v.motionBucket,
    fps: v.fps,
    noiseAug: v.noiseAug,
    minGuidance: v.minGuidance,
    maxGuidance: v.maxGuidance,
    decodeChunk: v.decodeChunk === 'auto' ? autoChunk : Number(v.decodeChunk),
    ...(v.seed.trim() === '' ? {} : { seed: Number(v.seed) }),
  };
}

/** Field → message, from the shared schema plus the page's own ranges. */
export function validate(v: FormValues, autoChunk: number): Record<string, string> {
  const errors: Record<string, string> = {};
  const r = generationSettingsSchema.safeParse(toSettings(v, autoChunk));
  if (!r.success) for (const i of r.error.issues) errors[String(i.path[0] ?? 'form')] ??= i.message;
  if (v.motionBucket < 0 || v.motionBucket > 255) errors.motionBucket ??= 'motion bucket is 0–255 (127 is the trained default)';
  if (v.fps < 5 || v.fps > 30) errors.fps ??= 'fps is 5–30';
  if (v.seed.trim() !== '' && !/^\d+$/.test(v.seed.trim())) errors.seed = 'a seed is a whole number ≥ 0, or empty for a random one';
  if (v.decodeChunk !== 'auto' && !/^\d+$/.test(v.decodeChunk)) errors.decodeChunk = 'a whole number of frames, or auto';
  if (v.formats.length === 0) errors.formats = 'choose at least one output format';
  return errors;
}

interface FieldProps {
  name: keyof FormValues;
  label: string;
  hint: string;
  values: FormValues;
  errors: Record<string, string>;
  onChange: (v: FormValues) => void;
  type?: 'number' | 'text';
  step?: number;
  min?: number;
  max?: number;
}

function Field({ name, label, hint, values, errors, onChange, type = 'number', step, min, max }: FieldProps) {
  const id = `f-${name}`;
  const value = values[name] as string | number;
  return (
    <div class={`field ${errors[name] ? 'invalid' : ''}`}>
      <label for={id}>{label}</label>
      <input
        id={id}
        name={name}
        type={type as 'number'}
        inputMode={type === 'number' ? 'decimal' : undefined}
        step={step}
        min={min}
        max={max}
        value={value}
        aria-invalid={errors[name] ? 'true' : 'false'}
        aria-describedby={`${id}-hint`}
        onInput={(e) => {
          const raw = (e.target as HTMLInputElement).value;
          onChange({ ...values, [name]: type === 'number' ? (raw === '' ? Number.NaN : Number(raw)) : raw });
        }}
      />
      <small id={`${id}-hint`}>{errors[name] ?? hint}</small>
    </div>
  );
}

interface Props {
  values: FormValues;
  errors: Record<string, string>;
  onChange: (v: FormValues) => void;
  lastSeed?: number;
  autoChunk: number;
  canSave: boolean;
}

export function SettingsForm({ values, errors, onChange, lastSeed, autoChunk, canSave }: Props) {
  const common = { values, errors, onChange };
  return (
    <section class="card settings" aria-label="Settings">
      <div class="grid">
        <Field {...common} name="width" label="Width" hint="multiple of 64; 1024 is what SVD was trained on" step={64} />
        <Field {...common} name="height" label="Height" hint="multiple of 64; 576 (or 1024 for portrait)" step={64} />
        <Field {...common} name="frames" label="Frames" hint="25 for SVD-XT, 14 for SVD; others work less well" min={1} max={128} />
        <Field {...common} name="steps" label="Steps" hint="sampling steps: more is slower, 25 is the reference" min={1} max={200} />
        <Field {...common} name="motionBucket" label="Motion" hint="0–255: how much the scene moves (127 default)" min={0} max={255} />
        <Field {...common} name="fps" label="FPS" hint="5–30: playback speed; the model is told fps − 1" min={5} max={30} />
        <Field {...common} name="noiseAug" label="Augmentation" hint="noise added to the image: more = freer motion, less likeness" step={0.01} min={0} />
        <Field {...common} name="minGuidance" label="Min guidance" hint="guidance on the first frame" step={0.1} min={0} />
        <Field {...common} name="maxGuidance" label="Max guidance" hint="guidance on the last frame (≤ 1 turns guidance off)" step={0.1} min={0} />
        <div class={`field ${errors.seed ? 'invalid' : ''}`}>
          <label for="f-seed">Seed</label>
          <div class="row">
            <input id="f-seed" name="seed" type="text" inputMode="numeric" placeholder="random" value={values.seed} aria-invalid={errors.seed ? 'true' : 'false'} onInput={(e) => onChange({ ...values, seed: (e.target as HTMLInputElement).value })} />
            <button type="button" title="random seed" onClick={() => onChange({ ...values, seed: String(Math.floor(Math.random() * 2 ** 32)) })}>
              Random
            </button>
            <button type="button" disabled={lastSeed === undefined} title="reuse the last seed" onClick={() => onChange({ ...values, seed: String(lastSeed) })}>
              Last
            </button>
          </div>
          <small>{errors.seed ?? 'same seed + same settings = same video; empty = random'}</small>
        </div>
        <div class={`field ${errors.decodeChunk ? 'invalid' : ''}`}>
          <label for="f-decodeChunk">Decode chunk</label>
          <input id="f-decodeChunk" name="decodeChunk" type="text" value={values.decodeChunk} onInput={(e) => onChange({ ...values, decodeChunk: (e.target as HTMLInputElement).value })} />
          <small>{errors.decodeChunk ?? `frames decoded together; auto = ${autoChunk} from free GPU memory`}</small>
        </div>
      </div>
      <fieldset class="formats">
        <legend>Output</legend>
        {['mp4', 'gif', 'webm'].map((f) => (
          <label key={f}>
            <input type="checkbox" checked={values.formats.includes(f)} onChange={(e) => onChange({ ...values, formats: (e.target as HTMLInputElement).checked ? [...values.formats, f] : values.formats.filter((x) => x !== f) })} /> {f.toUpperCase()}
          </label>
        ))}
        <label title={canSave ? '' : 'start the server with --save-dir to enable'}>
          <input type="checkbox" disabled={!canSave} checked={canSave && values.saveToFolder} onChange={(e) => onChange({ ...values, saveToFolder: (e.target as HTMLInputElement).checked })} /> Save to Drive folder
        </label>
        {errors.formats && <small class="error">{errors.formats}</small>}
      </fieldset>
    </section>
  );
}

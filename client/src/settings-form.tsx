// The settings: the model, then the ones people change most (motion, frames, fps, seed), then
// Generate, and the rest folded under "Advanced". Each field shows its hint, or in its place the message of what is wrong.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { SettingKey } from '../../common/settings.js';
import { INSTALL_INTERPOLATOR_COMMAND } from '../../common/video-chain.js';
import { videoFormats } from '../../common/video-formats.js';
import { labelOf, modelLabel, withModel, type FormValues, type ModelChoice, type TextField } from './form.js';

type Errors = Partial<Record<SettingKey, string>>;

interface FieldProps {
  name: TextField;
  hint: string;
  values: FormValues;
  errors: Errors;
  onChange: (v: FormValues) => void;
  decimal?: boolean;
  placeholder?: string;
  wide?: boolean;
  children?: ComponentChildren;
}

function Field({ name, hint, values, errors, onChange, decimal, placeholder, wide, children }: FieldProps) {
  const id = `f-${name}`;
  const error = errors[name];
  return (
    <div class={`field${error ? ' invalid' : ''}${wide ? ' wide' : ''}`}>
      <label for={id}>{labelOf(name)}</label>
      <div class="control">
        <input
          id={id}
          name={name}
          type="text"
          inputMode={decimal ? 'decimal' : 'numeric'}
          autocomplete="off"
          spellcheck={false}
          placeholder={placeholder}
          value={values[name]}
          aria-invalid={error ? 'true' : 'false'}
          aria-describedby={`${id}-msg`}
          onInput={(e) => onChange({ ...values, [name]: (e.target as HTMLInputElement).value })}
        />
        {children}
      </div>
      <small id={`${id}-msg`} class={error ? 'error' : undefined} data-testid={`${name}-message`}>
        {error ?? hint}
      </small>
    </div>
  );
}

const ADVANCED: SettingKey[] = ['width', 'height', 'steps', 'noiseAug', 'minGuidance', 'maxGuidance', 'decodeChunk', 'loops', 'formats'];

interface Props {
  values: FormValues;
  errors: Errors;
  onChange: (v: FormValues) => void;
  models: ModelChoice[];
  lastSeed?: number;
  autoChunk: number;
  canSave: boolean;
  /** "the Drive folder" on Colab, "the save folder" elsewhere. */
  saveFolder: string;
  /** Generate and its summary: between the common settings and "Advanced", where the eye is. */
  children: ComponentChildren;
}

export function SettingsForm({ values, errors, onChange, models, lastSeed, autoChunk, canSave, saveFolder, children }: Props) {
  const [advanced, setAdvanced] = useState(false);
  // A message under "Advanced" must be seen: the section opens while one of its fields is wrong.
  const advancedWrong = ADVANCED.some((k) => errors[k]);
  useEffect(() => {
    if (advancedWrong) setAdvanced(true);
  }, [advancedWrong]);
  const common = { values, errors, onChange };
  const model = models.find((m) => m.name === values.model) ?? models[0];
  return (
    <section class="card settings" aria-label="Settings">
      <div class="field">
        <label for="model">Model</label>
        <select id="model" value={model?.name} aria-describedby="model-msg" onChange={(e) => onChange(withModel(values, model, models.find((m) => m.name === (e.target as HTMLSelectElement).value)!))}>
          {models.map((m) => (
            <option key={m.name} value={m.name}>
              {modelLabel(m)}
            </option>
          ))}
          {!models.some((m) => m.frames === 25 && !m.demo && !m.fast) && <option disabled>SVD-XT (25 frames): not installed</option>}
          {!models.some((m) => m.frames === 14 && !m.demo) && <option disabled>SVD (14 frames): not installed</option>}
          {!models.some((m) => m.fast && !m.demo) && <option disabled>Fast (4 steps): not installed</option>}
        </select>
        <small id="model-msg">
          {model?.demo
            ? 'random weights: the video is noise. Install a real model with npm run setup -- --model svd-xt'
            : model?.fast
              ? 'AnimateLCM: 4 steps with guidance near 1 (2–8 steps work; more do not help)'
              : models.length > 1
                ? 'switching models reloads the GPU (a minute or so)'
                : 'install more with npm run setup -- --model svd'}
        </small>
      </div>
      <div class="grid">
        <Field {...common} name="motionBucket" hint="how much the scene moves; 127 is the trained default" />
        <Field {...common} name="frames" hint={`${model?.demo ? `the demo model makes ${model.frames}` : '25 for SVD-XT, 14 for SVD'}; others work less well`} />
        <Field {...common} name="fps" hint="playback speed; the model is told fps − 1" />
        <Field {...common} name="seed" placeholder="random" wide hint="same seed + same settings = same video; empty = random">
          <button type="button" onClick={() => onChange({ ...values, seed: String(Math.floor(Math.random() * 2 ** 32)) })}>
            Random
          </button>
          <button type="button" disabled={lastSeed === undefined} title="the seed of the latest job" onClick={() => onChange({ ...values, seed: String(lastSeed) })}>
            Last
          </button>
        </Field>
        <Field {...common} name="extend" hint="clips in a row, each from the last frame of the one before" />
        <Field
          {...common}
          name="interpolate"
          hint={model?.interpolator === false ? `needs the interpolator: ${INSTALL_INTERPOLATOR_COMMAND}` : '1, 2, 4 or 8: new frames between each pair (RIFE), fps × this'}
        />
        <Field {...common} name="variations" hint="videos with seeds seed, seed + 1, … side by side" />
      </div>
      {children}
      <details
        class="advanced"
        open={advanced}
        onToggle={(e) => {
          const details = e.currentTarget as HTMLDetailsElement;
          if (!details.open && advancedWrong) details.open = true;
          else setAdvanced(details.open);
        }}
      >
        <summary>Advanced</summary>
        <div class="grid">
          <Field {...common} name="width" hint="multiple of 64; SVD was trained on 1024" />
          <Field {...common} name="height" hint="multiple of 64; 576, or 1024 for portrait" />
          <Field {...common} name="steps" hint={model?.demo ? 'sampling steps: more is slower' : 'sampling steps: more is slower, 25 is the reference'} />
          <Field {...common} name="noiseAug" decimal hint="noise added to the image: freer motion, less likeness" />
          <Field {...common} name="minGuidance" decimal hint="guidance on the first frame" />
          <Field {...common} name="maxGuidance" decimal hint="on the last frame; ≤ 1 turns guidance off" />
          <Field {...common} name="decodeChunk" hint={`frames decoded together; auto = ${autoChunk} from free GPU memory`} />
          <Field {...common} name="loops" hint="times the clip repeats in the file" />
        </div>
        <fieldset class="formats" aria-describedby="formats-msg">
          <legend>{labelOf('formats')}</legend>
          {videoFormats.map((f) => (
            <label key={f}>
              <input
                type="checkbox"
                checked={values.formats.includes(f)}
                onChange={(e) => onChange({ ...values, formats: (e.target as HTMLInputElement).checked ? [...values.formats, f] : values.formats.filter((x) => x !== f) })}
              />{' '}
              {f.toUpperCase()}
            </label>
          ))}
          <label>
            <input type="checkbox" checked={values.pingPong} onChange={(e) => onChange({ ...values, pingPong: (e.target as HTMLInputElement).checked })} /> {labelOf('pingPong')}
          </label>
          <label title={canSave ? '' : 'start the server with --save-dir to enable'}>
            <input type="checkbox" disabled={!canSave} checked={canSave && values.saveToFolder} onChange={(e) => onChange({ ...values, saveToFolder: (e.target as HTMLInputElement).checked })} /> Save
            a copy to {saveFolder}
          </label>
          <small id="formats-msg" class={errors.formats ? 'error' : undefined}>
            {errors.formats ?? 'ping-pong plays the clip forward, then back'}
          </small>
        </fieldset>
      </details>
    </section>
  );
}

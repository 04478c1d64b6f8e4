// The settings, made from the settings table (form.ts's FORM_FIELDS): the model, then the common
// ones (motion, frames, fps, seed), then Generate, and the rest folded under "Advanced". Each field
// shows its hint, or in its place the message of what is wrong.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { INSTALL_INTERPOLATOR_COMMAND } from '../../common/video-chain.js';
import { FORM_FIELDS, modelLabel, withModel, type FormField, type FormValues, type ModelChoice } from './form.js';

type Errors = Partial<Record<string, string>>;
type Values = Record<string, unknown>;

interface FieldProps {
  field: FormField;
  hint: string;
  values: FormValues;
  errors: Errors;
  onChange: (v: FormValues) => void;
  wide?: boolean;
  children?: ComponentChildren;
}

function TextField({ field, hint, values, errors, onChange, wide, children }: FieldProps) {
  const id = `f-${field.key}`;
  const error = errors[field.key];
  return (
    <div class={`field${error ? ' invalid' : ''}${wide ? ' wide' : ''}`}>
      <label for={id}>{field.label}</label>
      <div class="control">
        <input
          id={id}
          name={field.key}
          type="text"
          inputMode={field.control === 'decimal' ? 'decimal' : 'numeric'}
          autocomplete="off"
          spellcheck={false}
          placeholder={field.blank}
          value={(values as unknown as Values)[field.key] as string}
          aria-invalid={error ? 'true' : 'false'}
          aria-describedby={`${id}-msg`}
          onInput={(e) => onChange({ ...values, [field.key]: (e.target as HTMLInputElement).value })}
        />
        {children}
      </div>
      <small id={`${id}-msg`} class={error ? 'error' : undefined} data-testid={`${field.key}-message`}>
        {error ?? hint}
      </small>
    </div>
  );
}

const CHOICES = FORM_FIELDS.filter((f) => f.control === 'choices' || f.control === 'toggle');
/** The Advanced section's fields: a message in any of them opens it. */
const ADVANCED = FORM_FIELDS.filter((f) => f.level === 'advanced').map((f) => f.key);

interface Props {
  values: FormValues;
  errors: Errors;
  onChange: (v: FormValues) => void;
  models: ModelChoice[];
  lastSeed?: number;
  autoChunk: number;
  /** Whether the decode chunk's "auto" comes from a GPU's free memory (else it is the default). */
  autoFromGpu: boolean;
  canSave: boolean;
  /** "the Drive folder" on Colab, "the save folder" elsewhere. */
  saveFolder: string;
  /** Generate and its summary: between the common settings and "Advanced", where the eye is. */
  children: ComponentChildren;
}

export function SettingsForm({ values, errors, onChange, models, lastSeed, autoChunk, autoFromGpu, canSave, saveFolder, children }: Props) {
  const [advanced, setAdvanced] = useState(false);
  // A message under "Advanced" must be seen: the section opens while one of its fields is wrong.
  const advancedWrong = ADVANCED.some((k) => errors[k]);
  useEffect(() => {
    if (advancedWrong) setAdvanced(true);
  }, [advancedWrong]);
  const model = models.find((m) => m.name === values.model) ?? models[0];
  const held = values as unknown as Values;

  /** The hint under a field: the table's words, or what only the page knows (the model, the GPU). */
  const hintOf = (f: FormField): string => {
    switch (f.key) {
      case 'frames':
        return `${model?.demo ? `the demo model makes ${model.frames}` : '25 for SVD-XT, 14 for SVD'}; others work less well`;
      case 'steps':
        return model?.demo ? 'sampling steps: more is slower' : f.hint;
      case 'interpolate':
        return model?.interpolator === false ? `needs the interpolator: ${INSTALL_INTERPOLATOR_COMMAND}` : '1, 2, 4 or 8: new frames between each pair (RIFE), fps × this';
      case 'decodeChunk':
        return autoFromGpu ? `${f.hint}; auto = ${autoChunk} from free GPU memory` : `${f.hint}; auto = ${autoChunk}`;
      default:
        return f.hint;
    }
  };

  const textField = (f: FormField) =>
    f.key === 'seed' ? (
      <TextField key={f.key} field={f} hint={hintOf(f)} values={values} errors={errors} onChange={onChange} wide>
        <button type="button" onClick={() => onChange({ ...values, seed: String(Math.floor(Math.random() * 2 ** 32)) })}>
          Random
        </button>
        <button type="button" disabled={lastSeed === undefined} title="the seed of the latest job" onClick={() => onChange({ ...values, seed: String(lastSeed) })}>
          Last
        </button>
      </TextField>
    ) : (
      <TextField key={f.key} field={f} hint={hintOf(f)} values={values} errors={errors} onChange={onChange} />
    );
  const texts = (level: FormField['level']) => FORM_FIELDS.filter((f) => f.level === level && (f.control === 'number' || f.control === 'decimal')).map(textField);

  const choice = (f: FormField) => {
    if (f.control === 'toggle') {
      // Saving needs a save folder; the words name the one this server has.
      const save = f.key === 'saveToFolder';
      return (
        <label key={f.key} title={save && !canSave ? 'start the server with --save-dir to enable' : f.hint}>
          <input
            type="checkbox"
            disabled={save && !canSave}
            checked={(!save || canSave) && (held[f.key] as boolean)}
            onChange={(e) => onChange({ ...values, [f.key]: (e.target as HTMLInputElement).checked })}
          />{' '}
          {save ? `Save a copy to ${saveFolder}` : f.label}
        </label>
      );
    }
    const chosen = held[f.key] as string[];
    return f.options.map((o) => (
      <label key={`${f.key}-${o}`}>
        <input
          type="checkbox"
          checked={chosen.includes(o)}
          onChange={(e) => onChange({ ...values, [f.key]: (e.target as HTMLInputElement).checked ? [...chosen, o] : chosen.filter((x) => x !== o) })}
        />{' '}
        {o.toUpperCase()}
      </label>
    ));
  };
  const choiceError = CHOICES.map((f) => errors[f.key]).find(Boolean);

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
      <div class="grid">{texts('common')}</div>
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
        <div class="grid">{texts('advanced')}</div>
        <fieldset class="formats" aria-describedby="formats-msg">
          <legend>{CHOICES[0]?.label}</legend>
          {CHOICES.map(choice)}
          <small id="formats-msg" class={choiceError ? 'error' : undefined}>
            {choiceError ??
              CHOICES.filter((f) => f.control === 'toggle' && f.key !== 'saveToFolder')
                .map((f) => `${f.label.toLowerCase()}: ${f.hint}`)
                .join('; ')}
          </small>
        </fieldset>
      </details>
    </section>
  );
}

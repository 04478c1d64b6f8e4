// The one table of job settings (common/settings.ts) and what is made from it: the schemas and
// their messages, the CLI's flags and --help, the page's form. A row added to a table must reach
// all of them with nothing else written.
import { describe, expect, it } from 'vitest';
import { flagNamer, settingOptions, settingsFromFlags, settingsHelp } from '../cli/setting-flags.js';
import { GENERATE_HELP } from '../cli/generate-command.js';
import { defaultValues, FORM_FIELDS, formFields, fromSettings, toSettings, validate } from '../client/src/form.js';
import { jobRecordSchema } from '../common/api-types.js';
import { formatError } from '../common/messages.js';
import { z } from 'zod';
import { decimal, entries, group, schemaOf, setting, toNumber, whole } from '../common/setting-table.js';
import { CROSS_CHECKS, jobSettingsSchema, labelOf, SETTINGS, settingsList } from '../common/settings.js';

describe('a setting added to the table', () => {
  const table = {
    ...SETTINGS,
    wobble: setting({
      kind: whole(0, 9),
      default: 3,
      label: 'Wobble',
      help: 'how much the camera shakes',
      flag: 'wobble',
      control: 'number',
      level: 'advanced',
      use: 'sampling',
    }),
    // a kind of its own: a number or a word (as decodeChunk 'auto' will be)
    chunk: setting({
      kind: { schema: z.union([z.literal('auto'), whole(1, 128).schema]), range: '1–128 or auto', fromText: (t) => (t === 'auto' ? t : toNumber(t)), metavar: 'N|auto' },
      default: 'auto',
      label: 'Chunk',
      help: 'frames at once',
      flag: 'chunk',
      control: 'number',
      level: 'advanced',
      use: 'sampling',
    }),
    // a group, as framing is: one nested object, one flag per field
    blend: group({
      label: 'Extend',
      help: 'continue from the last frame',
      control: 'decimal',
      level: 'advanced',
      use: 'sampling',
      fields: {
        overlap: setting({
          kind: decimal(0, 1),
          default: 0.25,
          label: 'Overlap',
          help: 'share of frames kept from before',
          flag: 'blend-overlap',
          control: 'decimal',
          level: 'advanced',
          use: 'sampling',
        }),
      },
    }),
  };
  const schema = schemaOf(table, CROSS_CHECKS);

  it('is in the schema, with its default, its range and its message', () => {
    const parsed = schema.parse({});
    expect(parsed.wobble).toBe(3);
    expect(parsed.chunk).toBe('auto');
    expect(schema.parse({ chunk: 4 }).chunk).toBe(4);
    expect(parsed.blend).toEqual({ overlap: 0.25 });
    expect(parsed.steps).toBe(25);
    const wrong = schema.safeParse({ wobble: 12, blend: { overlap: 2 } });
    expect(wrong.success).toBe(false);
    expect(formatError(wrong.error!)).toBe('wobble must be 0–9; blend.overlap must be 0–1');
    // the table's cross-checks still hold in a schema made from a bigger table
    expect(formatError(schema.safeParse({ minGuidance: 3, maxGuidance: 2 }).error!)).toBe('maxGuidance must be at least minGuidance');
  });

  it('is a command-line flag, read as its kind, named in messages, and described in --help with its range and default', () => {
    expect(settingOptions(table)).toMatchObject({ wobble: { type: 'string' }, 'blend-overlap': { type: 'string' } });
    expect(settingsFromFlags({ wobble: '5', 'blend-overlap': '0.5', 'crop-x': '0.1' }, table)).toEqual({ wobble: 5, blend: { overlap: 0.5 }, framing: { x: 0.1 } });
    expect(() => settingsFromFlags({ wobble: 'lots' }, table)).toThrow('--wobble must be a number, got "lots"');
    expect(settingsFromFlags({ chunk: 'auto' }, table)).toEqual({ chunk: 'auto' });
    expect(settingsFromFlags({ chunk: '6' }, table)).toEqual({ chunk: 6 });
    const error = schema.safeParse(settingsFromFlags({ wobble: '12', 'blend-overlap': '7' }, table)).error!;
    expect(formatError(error, flagNamer(table))).toBe('--wobble must be 0–9; --blend-overlap must be 0–1');
    const help = settingsHelp(table);
    expect(help).toMatch(/--wobble N +how much the camera shakes \(0–9; default 3\)/);
    expect(help).toMatch(/--blend-overlap X +share of frames kept from before \(0–1; default 0\.25\)/);
    expect(help).toMatch(/--chunk N\|auto +frames at once \(1–128 or auto; default auto\)/);
  });

  it('is a field of the form, with its label, hint, control and section', () => {
    expect(formFields(table).find((f) => f.key === 'wobble')).toMatchObject({ label: 'Wobble', hint: 'how much the camera shakes', control: 'number', level: 'advanced' });
    const chunk = formFields(table).find((f) => f.key === 'chunk')!;
    expect([chunk.fromText('auto'), chunk.fromText('7'), chunk.fromText('')]).toEqual(['auto', 7, Number.NaN]);
    expect(formFields(table).find((f) => f.key === 'blend.overlap')).toMatchObject({ path: ['blend', 'overlap'], label: 'Overlap', control: 'decimal' });
    // the table's own rows keep their place
    expect(formFields(table).slice(0, FORM_FIELDS.length)).toEqual(FORM_FIELDS);
  });
});

describe('the settings table', () => {
  it('gives every setting a flag of generate (in its --help), a field of the form, or a control of its own', () => {
    const fields = new Set(FORM_FIELDS.map((f) => f.key));
    for (const { key, setting } of entries(SETTINGS)) {
      if (setting.flag) expect(GENERATE_HELP, key).toContain(`--${setting.flag} `);
      if (setting.control === 'crop') expect(key).toMatch(/^framing\./);
      else if (setting.control !== 'none') expect(fields.has(key), key).toBe(true);
    }
    // what issue 21 asked of generate --help: the meaning, the range and the default of these
    const help = GENERATE_HELP.replace(/\s+/g, ' ');
    expect(help).toMatch(/--motion-bucket N how much the scene moves: SVD's motion bucket id, trained at 127 \(0–1023; default 127\)/);
    expect(help).toMatch(/--noise-aug X noise added to the image[^(]*\(0–10; default 0\.02\)/);
    expect(help).toMatch(/--fps N frames per second of the video; the model is told fps − 1[^(]*\(1–60; default 7\)/);
    expect(help).toContain('the demo models (demo/…) take --width 256 --height 128 --steps 8');
  });

  it('has one framing, nested, with its defaults; job records with the flat names of before are read into it', () => {
    expect(jobSettingsSchema.parse({}).framing).toEqual({ mode: 'crop', x: 0.5, y: 0.5 });
    expect(jobSettingsSchema.parse({ framing: { x: 0.2 } }).framing).toEqual({ mode: 'crop', x: 0.2, y: 0.5 });
    expect(jobSettingsSchema.parse({ resize: 'fit', cropX: 0.1, cropY: 0.9, steps: 3 })).toMatchObject({ framing: { mode: 'fit', x: 0.1, y: 0.9 }, steps: 3 });
    // a job.json written before: the store reads it with the job record's schema
    const old = { id: 'a', status: 'done', createdAt: '2026-11-27T00:00:00Z', videos: {}, inputName: 'input.png', settings: { width: 256, height: 128, resize: 'crop', cropX: 0.25, cropY: 0.5 } };
    expect(jobRecordSchema.parse(old).settings.framing).toEqual({ mode: 'crop', x: 0.25, y: 0.5 });
    expect(jobSettingsSchema.parse({ framing: { mode: 'stretch' }, cropX: 0 }).framing).toEqual({ mode: 'stretch', x: 0, y: 0.5 });
    const wrong = jobSettingsSchema.safeParse({ framing: { mode: 'zoom', y: -1 } }).error!;
    expect(formatError(wrong)).toBe('framing.mode must be one of crop, fit, stretch; framing.y must be 0–1');
    expect(formatError(wrong, labelOf)).toBe('Resize must be one of crop, fit, stretch; Crop position y must be 0–1');
    expect(formatError(jobSettingsSchema.safeParse({ framing: 'crop' }).error!)).toMatch(/^framing: /);
  });

  it('words the seed range without powers of two', () => {
    expect(formatError(jobSettingsSchema.safeParse({ seed: -5 }).error!, labelOf)).toBe('Seed must be 0–9007199254740991');
    expect(GENERATE_HELP).not.toMatch(/2\^53/);
  });

  it('lists a job’s settings by label, the framing as its three settings', () => {
    const list = settingsList(jobSettingsSchema.parse({ framing: { x: 0.25 }, seed: 4, formats: ['mp4', 'gif'] }));
    expect(list).toContainEqual(['Crop position x', '0.25']);
    expect(list).toContainEqual(['Resize', 'crop']);
    expect(list).toContainEqual(['Output', 'mp4, gif']);
    expect(list).toContainEqual(['Ping-pong', 'no']);
    expect(list.map(([label]) => label)).not.toContain('Framing');
  });
});

describe('the form made from the table', () => {
  const demo = { name: 'demo', demo: true, frames: 5 };

  it('sends what it shows, and shows a job’s settings back as they were sent', () => {
    const values = { ...defaultValues(demo), seed: '42', noiseAug: '0.1', formats: ['gif' as const], pingPong: true };
    const framing = { mode: 'fit' as const, x: 0.3, y: 0.7 };
    const sent = jobSettingsSchema.parse(toSettings(values, framing, 4));
    expect(sent).toMatchObject({ width: 256, height: 128, steps: 8, frames: 5, seed: 42, noiseAug: 0.1, decodeChunk: 4, formats: ['gif'], pingPong: true, framing, model: 'demo' });
    expect(fromSettings(sent, 42)).toEqual({ ...values, decodeChunk: '4' });
    // an empty seed is a random one; an empty frame count is a mistake
    expect(jobSettingsSchema.parse(toSettings({ ...values, seed: '' }, framing, 4)).seed).toBeUndefined();
    expect(validate({ ...values, frames: '' }, framing, 4)).toEqual({ frames: 'Frames must be 1–128' });
  });
});

// How a table of job settings is written and what is made from it. Each row says once what a
// setting is (its zod schema with range, default and plain messages), what people call it, what
// it means, its command-line flag, the page's control for it, whether it is one of the common
// ones, and which part of a job reads it. common/settings.ts holds the table; the server's schema,
// the page's form, the CLI's flags and --help and the benchmarks' defaults are made from it by
// the functions here, so a new setting is one row plus the code that uses it.
import { z } from 'zod';

/**
 * The page's control: a text field for a whole or decimal number; `choices` one checkbox per
 * allowed value of a list; `toggle` one checkbox; `model` the model picker; `crop` the image's crop
 * window (a group: the image input draws it); `none` not on the page (API and CLI only).
 */
export type Control = 'number' | 'decimal' | 'choices' | 'toggle' | 'model' | 'crop' | 'none';
/** `common`: on the page before Generate; `advanced`: under "Advanced". */
export type Level = 'common' | 'advanced';
/**
 * What reads it: `framing` brings the image to the size, `sampling` is the pipeline's own
 * argument (as diffusers' `__call__`), `chain` the worker's video chain around the pipeline
 * (segments, interpolation), `output` the video file, `job` the server.
 */
export type Use = 'framing' | 'sampling' | 'chain' | 'output' | 'job';

/**
 * A type of value: its schema without default, its range in words ("1–128"), how typed text (a
 * flag's value, a form field) becomes a value for the schema to check, and what `--help` shows for it.
 */
export interface Kind<S extends z.ZodType = z.ZodType> {
  schema: S;
  range: string;
  /** Never throws: text that is not a value of the kind becomes one the schema refuses (NaN for a number). */
  fromText: (text: string) => unknown;
  metavar: string;
  /** The allowed values, where they are a list (the page's checkboxes). */
  options?: readonly string[];
}

/** Typed text as a number; '' and words are NaN, which the number schemas refuse as out of range. */
export const toNumber = (text: string): number => (text.trim() === '' ? Number.NaN : Number(text));

/** A whole number in [min, max]; an empty or non-numeric value reads as out of range. */
export function whole(min: number, max: number): Kind<z.ZodNumber> {
  const error = `must be ${min}–${max}`;
  const schema = z
    .number({ error })
    .int({ error: `must be a whole number, ${min}–${max}` })
    .min(min, { error })
    .max(max, { error });
  return { schema, range: `${min}–${max}`, fromText: toNumber, metavar: 'N' };
}

export function decimal(min: number, max: number): Kind<z.ZodNumber> {
  const error = `must be ${min}–${max}`;
  return { schema: z.number({ error }).min(min, { error }).max(max, { error }), range: `${min}–${max}`, fromText: toNumber, metavar: 'X' };
}

/** A whole multiple of `step` in [step, max]. */
export function multipleOf(step: number, max: number): Kind<z.ZodNumber> {
  const error = `must be a multiple of ${step}, ${step}–${max}`;
  const schema = z.number({ error }).int({ error }).min(step, { error }).multipleOf(step, { error }).max(max, { error });
  return { schema, range: `a multiple of ${step}, ${step}–${max}`, fromText: toNumber, metavar: 'N' };
}

export function oneOf<const V extends readonly [string, ...string[]]>(values: V): Kind<z.ZodEnum<{ [K in V[number]]: K }>> {
  const words = values.join(', ');
  return { schema: z.enum(values, { error: `must be one of ${words}` }), range: words, fromText: (t) => t, metavar: values.join('|'), options: values };
}

/** One of a few whole numbers (the interpolation factor: 1, 2, 4 or 8). */
export function oneOfNumbers<const V extends readonly [number, ...number[]]>(values: V): Kind<z.ZodType<V[number]>> {
  const words = `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
  const schema = z.number({ error: `must be ${words}` }).refine((v): v is V[number] => values.includes(v), `must be ${words}`) as unknown as z.ZodType<V[number]>;
  return { schema, range: words, fromText: toNumber, metavar: values.join('|') };
}

/** A list of some of `values`, each once (`noun`: what one value is, for the message). */
export function someOf<const V extends readonly [string, ...string[]]>(values: V, noun: string) {
  const words = values.join(', ');
  const schema = z
    .array(z.enum(values, { error: `must be among ${words}` }))
    .min(1, { error: `needs at least one of ${words}` })
    .refine((f) => new Set(f).size === f.length, `name each ${noun} once`);
  return { schema, range: `one or more of ${words}`, fromText: (t) => t.split(','), metavar: values.join(','), options: values } satisfies Kind;
}

export function yesNo(): Kind<z.ZodBoolean> {
  return { schema: z.boolean({ error: 'must be true or false' }), range: 'true or false', fromText: (t) => (t === 'true' ? true : t === 'false' ? false : t), metavar: 'true|false' };
}

export function text(maxLength: number): Kind<z.ZodString> {
  return { schema: z.string().max(maxLength), range: `up to ${maxLength} characters`, fromText: (t) => t, metavar: 'NAME' };
}

/** What a row says besides its value: the same for a plain setting and a group. */
interface Description<C extends Control, U extends Use> {
  label: string;
  /** What it does, in a few plain words: the form's hint, and --help's text before range and default. */
  help: string;
  /** The command-line flag without its dashes; none: not a command-line setting. */
  flag?: string;
  control: C;
  level: Level;
  use: U;
}

export interface Setting<S extends z.ZodType = z.ZodType, C extends Control = Control, U extends Use = Use> extends Description<C, U> {
  schema: S;
  kind: Kind;
  /** The value when none is given: the default, or what leaving it out means ("random"). */
  fallback: string;
  /** Shown in the form's empty field, where an empty field means "not given" (the seed: random). */
  blank?: string;
}

export interface SettingGroup<F extends Record<string, Setting> = Record<string, Setting>, C extends Control = Control, U extends Use = Use> extends Description<C, U> {
  fields: F;
  schema: z.ZodPrefault<z.ZodObject<{ [K in keyof F]: F[K]['schema'] }>>;
}

export type Row = Setting | SettingGroup;
export type SettingTable = Record<string, Row>;

const say = (v: unknown) => (Array.isArray(v) ? v.join(',') : String(v));

/** A setting with a default. */
export function setting<S extends z.ZodType, const C extends Control, const U extends Use>(row: { kind: Kind<S>; default: z.output<S> } & Description<C, U>): Setting<z.ZodDefault<S>, C, U> {
  const { kind, default: value, ...rest } = row;
  return { ...rest, kind, schema: kind.schema.default(value as never) as z.ZodDefault<S>, fallback: `default ${say(value)}` };
}

/** A setting that may be left out; `absent` says what happens then ("random"). */
export function optional<S extends z.ZodType, const C extends Control, const U extends Use>(
  row: { kind: Kind<S>; absent: string; blank?: string } & Description<C, U>,
): Setting<z.ZodOptional<S>, C, U> {
  const { kind, absent, ...rest } = row;
  return { ...rest, kind, schema: kind.schema.optional(), fallback: `default: ${absent}` };
}

/** Settings that travel together as one nested object (framing: {mode, x, y}). */
export function group<const F extends Record<string, Setting>, const C extends Control, const U extends Use>(row: { fields: F } & Description<C, U>): SettingGroup<F, C, U> {
  const shape = Object.fromEntries(Object.entries(row.fields).map(([k, f]) => [k, f.schema])) as { [K in keyof F]: F[K]['schema'] };
  return { ...row, schema: z.object(shape).prefault({} as never) };
}

export const isGroup = (row: Row): row is SettingGroup => 'fields' in row;

/** Every setting of a table with its place: `key` is its path joined by dots ("framing.x"). */
export interface Entry {
  key: string;
  path: string[];
  setting: Setting;
  /** The group it belongs to, if any. */
  group?: SettingGroup;
}

export function entries(table: SettingTable): Entry[] {
  return Object.entries(table).flatMap(([k, row]): Entry[] =>
    isGroup(row) ? Object.entries(row.fields).map(([f, setting]) => ({ key: `${k}.${f}`, path: [k, f], setting, group: row })) : [{ key: k, path: [k], setting: row }],
  );
}

export type ShapeOf<T extends SettingTable> = { [K in keyof T]: T[K]['schema'] };

/** The table's rows whose `use` is one of U, keeping their types. */
export type RowsFor<T extends SettingTable, U extends Use> = { [K in keyof T as T[K]['use'] extends U ? K : never]: T[K] };

export function rowsFor<T extends SettingTable, const U extends Use>(table: T, uses: readonly U[]): RowsFor<T, U> {
  return Object.fromEntries(Object.entries(table).filter(([, r]) => (uses as readonly Use[]).includes(r.use))) as RowsFor<T, U>;
}

/** A rule over several settings: checked where a schema holds all of `keys`. */
export interface CrossCheck {
  keys: string[];
  ok: (s: Record<string, unknown>) => boolean;
  /** The setting the message is about. */
  at: string;
  /** Without a subject, as the schemas' messages are; other settings as {key}. */
  message: string;
}

/** The zod object of a table: each row's schema, and each cross-check whose settings it holds. */
export function schemaOf<T extends SettingTable>(table: T, checks: readonly CrossCheck[] = []) {
  const shape = Object.fromEntries(Object.entries(table).map(([k, r]) => [k, r.schema])) as ShapeOf<T>;
  const applicable = checks.filter((c) => c.keys.every((k) => k in table));
  return z.object(shape).superRefine((s, ctx) => {
    for (const c of applicable) if (!c.ok(s as Record<string, unknown>)) ctx.addIssue({ code: 'custom', message: c.message, path: [c.at] });
  });
}

/** The form's and --help's words for one setting: what it does, then its range and its default. */
export function describe(s: Setting): string {
  return `${s.help} (${s.kind.range}; ${s.fallback})`;
}

// A settings table (common/setting-table.ts) as command-line flags: the options parseArgs reads,
// the settings the given flags make (nested where the table nests), their lines in --help, and
// the flag a message names. `generate` and the benchmarks read their settings through these.
import type { NameOf } from '../common/messages.js';
import { describe, entries, type SettingTable } from '../common/setting-table.js';
import { helpColumns } from './cli-args.js';
import { UsageError } from './usage-error.js';

const flagged = (table: SettingTable) => entries(table).filter((e) => e.setting.flag !== undefined);

/** parseArgs' options for every flagged setting (all take a value). */
export function settingOptions(table: SettingTable): Record<string, { type: 'string' }> {
  return Object.fromEntries(flagged(table).map((e) => [e.setting.flag!, { type: 'string' as const }]));
}

/**
 * The settings the flags in `values` give, as the schema takes them (a number where the setting is
 * one, `framing: {x}` for --crop-x); flags not given are left out, so the schema's defaults apply.
 */
export function settingsFromFlags(values: Record<string, unknown>, table: SettingTable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { path, setting } of flagged(table)) {
    const flag = setting.flag!;
    const v = values[flag];
    if (typeof v !== 'string') continue;
    const value = setting.kind.fromText(v);
    // The schema would refuse it as out of range; the flag's own words say what was typed.
    if ([value].flat().some((x) => typeof x === 'number' && !Number.isFinite(x))) throw new UsageError(`--${flag} must be a number, got "${v}"`);
    let into = out;
    for (const k of path.slice(0, -1)) into = (into[k] ??= {}) as Record<string, unknown>;
    into[path.at(-1)!] = value;
  }
  return out;
}

/** Messages name the flag the user typed ("--crop-x must be 0–1"). */
export function flagNamer(table: SettingTable): NameOf {
  const flags = new Map(flagged(table).map((e) => [e.key, `--${e.setting.flag}`]));
  return (key) => flags.get(key) ?? key;
}

/** One entry per flagged setting: the flag and its value's form, then what it does, its range and its default. */
export function settingsHelp(table: SettingTable, indent = 2): string {
  return helpColumns(
    flagged(table).map((e) => [`--${e.setting.flag} ${e.setting.kind.metavar}`, describe(e.setting)]),
    indent,
  );
}

/** Settings as the flags that give them ("--width 256 --height 128"), for help texts. */
export function asFlags(settings: Record<string, unknown>, table: SettingTable): string {
  return flagged(table)
    .filter((e) => e.path.length === 1 && settings[e.key] !== undefined)
    .map((e) => `--${e.setting.flag} ${String(settings[e.key])}`)
    .join(' ');
}

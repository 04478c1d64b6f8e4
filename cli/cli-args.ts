// How the `svd` commands read their arguments: node's parseArgs, plus --help on every command,
// negative numbers as values (`--seed -5` reaches the range check instead of parseArgs'
// "ambiguous" error) and parse errors as usage errors that point at the help.
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './usage-error.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** `--name -5` → `--name=-5` for options that take a value. */
function joinNegativeValues(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
    if (name && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/**
 * Parses `args` with every option a string unless said otherwise; `help` is true for --help or -h.
 * `command` names the svd command (`generate`), or is the whole npm command (`npm run setup --`)
 * where the program is not `svd`.
 */
export function parseCommandArgs<O extends Options>(command: string, args: string[], options: O) {
  const all = { ...options, help: { type: 'boolean', short: 'h' } } as const;
  try {
    const { values } = parseArgs({ args: joinNegativeValues(args, all), options: all, strict: true, allowPositionals: false });
    return values as { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string } & { help?: boolean };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code?.startsWith('ERR_PARSE_ARGS'))
      throw new UsageError(`${plainParseError((err as Error).message)} (${command.startsWith('npm ') ? command : `npm run svd -- ${command}`} --help lists the options)`);
    throw err;
  }
}

/**
 * parseArgs' first line, or for an option left without its value (at the end, or before another
 * option: parseArgs calls that "ambiguous") what to do about it.
 */
function plainParseError(message: string): string {
  const first = message.split('\n')[0]!;
  const missing = /^Option '(-\w, )?(--[\w-]+)(?: <value>)?' argument (?:missing|is ambiguous)/.exec(first);
  return missing ? `${missing[2]} needs a value` : first;
}

/** Words wrapped to `width` columns, each line after the first indented by `indent`. */
function wrap(words: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const w of words.split(' ')) {
    if (line && indent + line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

/** --help's option list: each option's form in a column, what it does beside it, wrapped at 100 columns. */
export function helpColumns(rows: [option: string, text: string][], indent = 2): string {
  const at = indent + Math.min(28, Math.max(...rows.map(([o]) => o.length)) + 2);
  return rows
    .map(([o, text]) => {
      const head = `${' '.repeat(indent)}${o}`;
      return `${head.length < at ? head.padEnd(at) : `${head}\n${' '.repeat(at)}`}${wrap(text, 100, at)}`;
    })
    .join('\n');
}

export function parseDType(v: string | undefined): 'float16' | 'float32' {
  if (v === undefined || v === 'fp16' || v === 'float16') return 'float16';
  if (v === 'fp32' || v === 'float32') return 'float32';
  throw new UsageError(`--dtype must be fp16 or fp32, got "${v}"`);
}

/** `path` if nothing is there yet, else the first free `name-2.ext`, `name-3.ext`, …: results are never overwritten. */
export function freePath(path: string): string {
  if (!existsSync(path)) return path;
  const dot = path.lastIndexOf('.');
  const slash = path.lastIndexOf('/');
  const [stem, ext] = dot > slash + 1 ? [path.slice(0, dot), path.slice(dot)] : [path, ''];
  for (let n = 2; ; n++) {
    const candidate = `${stem}-${n}${ext}`;
    if (!existsSync(candidate)) return candidate;
  }
}

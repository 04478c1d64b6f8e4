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
      throw new UsageError(`${(err as Error).message.split('\n')[0]} (${command.startsWith('npm ') ? command : `npm run svd -- ${command}`} --help lists the options)`);
    throw err;
  }
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

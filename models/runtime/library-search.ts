// Where the Linux dynamic loader would find a shared library for this process: LD_LIBRARY_PATH
// (read once when a process starts, which is why the launcher re-executes rather than setting
// it), then the ldconfig cache, then the default directories. Used to tell, before onnxruntime
// is touched, whether a provider's libraries can load, and to name what is missing.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface LoaderPathOptions {
  /**
   * Prefix of every fixed system path ('' for the real machine). When set, the ldconfig cache is
   * not read: the default directories under the prefix stand in for it (tests build fake trees).
   */
  root: string;
  /** This process's LD_LIBRARY_PATH. */
  ldLibraryPath: string | undefined;
}

const DEFAULT_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'];

/** soname → path for the x86-64 libraries in the ldconfig cache (`ldconfig -p`); empty where there is no ldconfig. */
function ldconfigCache(): Map<string, string> {
  const cache = new Map<string, string>();
  for (const cmd of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    let out: string;
    try {
      out = execFileSync(cmd, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    } catch {
      continue;
    }
    for (const line of out.split('\n')) {
      const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)/.exec(line);
      if (m && m[2]!.includes('x86-64') && !cache.has(m[1]!)) cache.set(m[1]!, m[3]!);
    }
    break;
  }
  return cache;
}

export function splitPath(value: string | undefined): string[] {
  return (value ?? '').split(':').filter((d) => d !== '');
}

export class LoaderPath {
  readonly ldLibraryPath: string[];
  readonly defaultDirs: string[];
  private cache: Map<string, string> | undefined;

  constructor(readonly opts: LoaderPathOptions) {
    this.ldLibraryPath = splitPath(opts.ldLibraryPath);
    this.defaultDirs = DEFAULT_DIRS.map((d) => opts.root + d);
  }

  private ldCache(): Map<string, string> {
    this.cache ??= this.opts.root ? new Map() : ldconfigCache();
    return this.cache;
  }

  /** The path the loader would open for `soname`, or undefined when it would fail. */
  find(soname: string): string | undefined {
    for (const dir of this.ldLibraryPath) if (existsSync(join(dir, soname))) return join(dir, soname);
    const cached = this.ldCache().get(soname);
    if (cached && existsSync(cached)) return cached;
    for (const dir of this.defaultDirs) if (existsSync(join(dir, soname))) return join(dir, soname);
    return undefined;
  }

  /** Every file name the loader can see, with its path, for naming installed versions of a missing library. */
  *names(): Generator<[name: string, path: string]> {
    for (const [name, path] of this.ldCache()) yield [name, path];
    for (const dir of [...this.ldLibraryPath, ...this.defaultDirs]) yield* filesIn(dir);
  }
}

export function* filesIn(dir: string): Generator<[name: string, path: string]> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) yield [name, join(dir, name)];
}

// The boundaries between folders, read from the import statements: common/ is browser-safe and
// shared, the page imports nothing but common/ and its packages, and no modules import each other
// in a circle.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const FOLDERS = ['common', 'client/src', 'models', 'media', 'server', 'cli', 'bench'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' || name === 'dist' ? [] : sources(p);
    return /\.tsx?$/.test(name) ? [p] : [];
  });
}

/** Every module specifier a file imports or re-exports, static or dynamic. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)|(?:^|\n)import\s+'([^']+)'/g)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

const toFile = (from: string, spec: string) => {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), base]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // try the next form
    }
  }
  return base;
};

const files = FOLDERS.flatMap((f) => sources(join(ROOT, f)));
const graph = new Map(
  files.map((f) => [
    f,
    specifiers(f)
      .filter((s) => s.startsWith('.'))
      .map((s) => toFile(f, s)),
  ]),
);
const rel = (f: string) => relative(ROOT, f);

describe('module boundaries', () => {
  it('common/ imports only zod and itself, so the browser can load it', () => {
    for (const f of sources(join(ROOT, 'common'))) {
      for (const s of specifiers(f)) expect(s === 'zod' || s.startsWith('./') ? 'ok' : `${rel(f)} imports ${s}`).toBe('ok');
    }
  });

  it('the page imports only common/ and its packages', () => {
    for (const f of sources(join(ROOT, 'client/src'))) {
      for (const s of specifiers(f)) {
        const target = s.startsWith('.') ? rel(toFile(f, s)) : s;
        const ok = !s.startsWith('.') || target.startsWith('common/') || target.startsWith('client/');
        expect(ok ? 'ok' : `${rel(f)} imports ${target}`).toBe('ok');
      }
    }
  });

  // README's arrows: each folder may import only the folders listed for it (and itself).
  const ARROWS: Record<string, string[]> = {
    common: [],
    models: ['common'],
    media: ['models', 'common'],
    server: ['media', 'models', 'common'],
    cli: ['media', 'models', 'common'],
  };
  for (const [from, allowed] of Object.entries(ARROWS)) {
    it(`${from}/ imports only ${allowed.length ? allowed.map((a) => `${a}/`).join(', ') : 'itself'}`, () => {
      const top = (f: string) => rel(f).split('/')[0]!;
      const wrong = files.filter((f) => top(f) === from).flatMap((f) => (graph.get(f) ?? []).filter((g) => top(g) !== from && !allowed.includes(top(g))).map((g) => `${rel(f)} imports ${rel(g)}`));
      expect(wrong).toEqual([]);
    });
  }

  it('has no import cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') return void cycles.push([...path.slice(path.indexOf(f)), f].map(rel).join(' → '));
      state.set(f, 'open');
      for (const g of graph.get(f) ?? []) if (graph.has(g)) visit(g, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
  });
});

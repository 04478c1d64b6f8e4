// What users run: the compiled code (npm run build) started by npm start, npm run svd and npm run
// setup, needing nothing from devDependencies. Built once into a copy of the project, so the
// working tree's dist/ and client/dist/ (which other suites build and serve) are left alone; the
// copy shares node_modules through a link.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../models/paths.js';
import { SMALL_DEMO_JOB } from './helpers.js';

const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const buildConfig = JSON.parse(readFileSync(join(PROJECT_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };

let work: string;
let copy: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'svd-packaging-'));
  copy = join(work, 'svd-studio');
  // What a clone holds that the build and the running app read: the compiled folders, the page's
  // sources, the demo model, the package files.
  const copied = [...buildConfig.include, 'client', 'demo', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];
  for (const name of copied) {
    cpSync(join(PROJECT_ROOT, name), join(copy, name), { recursive: true, filter: (src) => !/[/\\](dist|node_modules)$/.test(src) });
  }
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: copy, encoding: 'utf8', timeout: 280_000 });
  expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function compiledFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? compiledFiles(p) : e.name.endsWith('.js') ? [p] : [];
  });
}

/** `lodash/fp` → lodash, `@scope/pkg/x` → @scope/pkg. */
const packageName = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

/** Every module a compiled file names: imports, re-exports, import(), require() and require.resolve(). */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const imported = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
  const resolved = [...text.matchAll(/\.resolve\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
  return [...imported, ...resolved];
}

describe('the compiled code', () => {
  it('imports only Node builtins and production dependencies', () => {
    // tsx is resolved only where the worker pool and the noise thread start from .ts sources (npm run dev, tests), never from dist/.
    const devOnlyWhenFromSource: Record<string, string[]> = { tsx: ['server/workers/pool.js', 'models/pipeline/compute-thread.js'] };
    const dist = join(copy, 'dist');
    const files = compiledFiles(dist);
    expect(files.map((f) => relative(dist, f))).toEqual(
      expect.arrayContaining(['server/main.js', 'server/workers/worker-main.js', 'cli/launch.js', 'cli/start.js', 'cli/svd.js', 'cli/setup-model.js']),
    );
    const seen = new Set<string>();
    const wrong: string[] = [];
    for (const file of files) {
      for (const s of specifiers(file)) {
        if (s.startsWith('.') || s.startsWith('/') || isBuiltin(s)) continue;
        const name = packageName(s);
        seen.add(name);
        if (name in pkg.dependencies || devOnlyWhenFromSource[name]?.includes(relative(dist, file))) continue;
        wrong.push(`${relative(dist, file)} imports ${s}, which is not in package.json's dependencies`);
      }
    }
    expect(wrong).toEqual([]);
    // the scan finds what the server and the engine do import
    expect([...seen]).toEqual(expect.arrayContaining(['express', 'socket.io', 'onnxruntime-node', 'sharp', 'zod', 'tsx']));
  });
});

describe('npm start', () => {
  let server: ChildProcess | undefined;
  afterAll(() => {
    if (server?.pid && server.exitCode === null && server.signalCode === null) process.kill(-server.pid, 'SIGKILL');
  });

  it('says which option is wrong in one plain line and exits 1', () => {
    for (const [args, line] of [
      [['--bogus'], "error: Unknown option '--bogus' (npm start -- --help lists the options)"],
      [['--port', 'abc'], 'error: --port must be 0–65535 (npm start -- --help lists the options)'],
      [['--port'], 'error: --port needs a value (npm start -- --help lists the options)'],
    ] as const) {
      const r = spawnSync('npm', ['start', '--', ...args], { cwd: copy, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toBe(`${line}\n`);
    }
  });

  it('serves the built page and the API from dist/, the workers running compiled code too', async () => {
    const home = join(work, 'home');
    mkdirSync(home);
    // A home without installed models, so the server starts with the demo model shipped beside the code.
    const env = { ...process.env, HOME: home, SVD_MODEL_DIR: join(home, 'no-model'), SVD_STUDIO_CACHE: join(work, 'onnx') };
    server = spawn('npm', ['start', '--', '--port', '0', '--provider', 'cpu', '--output-dir', join(work, 'outputs')], { cwd: copy, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const url = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no "listening" line in 60 s:\n${log}`)), 60_000);
      server!.stdout!.on('data', (d: Buffer) => {
        log += d.toString();
        const m = /listening on (http:\/\/\S+\/)/.exec(log);
        if (m) {
          clearTimeout(timer);
          ok(m[1]!);
        }
      });
      server!.once('exit', (code) => fail(new Error(`npm start exited with ${code}:\n${log}`)));
    });

    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toBe(readFileSync(join(copy, 'client', 'dist', 'index.html'), 'utf8'));

    // Wait for the worker to load the demo model: it is a process of its own, forked from dist/.
    type Health = { status: string; model: { path: string; demo: boolean }; workers: { pid?: number }[]; error?: string };
    let health: Health | undefined;
    for (const deadline = Date.now() + 90_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
      const res = await fetch(new URL('api/health', url));
      expect(res.status).toBe(200);
      health = (await res.json()) as Health;
      if (health.status !== 'loading') break;
    }
    expect(health?.status, `${JSON.stringify(health)}\n${log}`).toBe('ready');
    expect(health!.model).toMatchObject({ demo: true, path: join(copy, 'demo', 'svd-tiny', 'model') });
    const workerPid = health!.workers[0]?.pid;
    expect(workerPid).toBeTypeOf('number');
    const workerArgv = readFileSync(`/proc/${workerPid}/cmdline`, 'utf8').split('\0');
    expect(workerArgv).toContain(join(copy, 'dist', 'server', 'workers', 'worker-main.js'));
    expect(workerArgv.join(' ')).not.toMatch(/tsx/);

    const exited = new Promise<number | null>((ok) => server!.once('exit', (code) => ok(code)));
    process.kill(-server.pid!, 'SIGTERM'); // npm, its shell and node: one process group
    await exited;
    const deadline = Date.now() + 10_000;
    while (existsSync(`/proc/${workerPid}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(`/proc/${workerPid}`), 'the worker outlived the server').toBe(false);
  }, 180_000);
});

describe('npm run svd and npm run setup', () => {
  it("run the README's first command from dist/", () => {
    const out = join(work, 'demo.mp4');
    const r = spawnSync('npm', ['run', '-s', 'svd', '--', ...SMALL_DEMO_JOB, '--provider', 'cpu', '--out', out], {
      cwd: copy,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, SVD_STUDIO_CACHE: join(work, 'onnx') },
    });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toContain(`→ ${out}`);
    expect(existsSync(out)).toBe(true);
  }, 150_000);

  it('npm run worker starts from dist/ and checks its options', () => {
    const r = spawnSync('npm', ['run', '-s', 'worker', '--', '--server', 'http://127.0.0.1:1/', '--token', 'a-long-token'], { cwd: copy, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toContain('error: --queue: ');
    expect(r.stderr).toContain('usage: npm run worker');
    expect(r.status).toBe(2);
  });

  it('npm run setup starts from dist/ and checks its options', () => {
    const r = spawnSync('npm', ['run', '-s', 'setup', '--', '--model', 'svd-nano'], { cwd: copy, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toContain('error: --model must be one of svd-xt, svd');
    expect(r.status).toBe(1);
  });
});

// How long /api/health takes to answer while a job runs, seen from another process the way a
// page or a monitor sees it. Starts `npm start`'s entry of a source tree (this one, or --root, e.g.
// an older commit checked out elsewhere) on a free port with the tiny model on the CPU, submits one
// job with big frames (seconds per UNet step), and asks for the health every --interval ms.
//   npm run bench:health-latency -- [--root DIR] [--width 1024 --height 512 --frames 5 --steps 4]
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: resolve(import.meta.dirname, '..') },
    width: { type: 'string', default: '1024' },
    height: { type: 'string', default: '512' },
    frames: { type: 'string', default: '5' },
    steps: { type: 'string', default: '4' },
    interval: { type: 'string', default: '250' },
  },
});
const root = resolve(values.root!);
const here = resolve(import.meta.dirname, '..');
const out = mkdtempSync(join(tmpdir(), 'svd-health-'));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
// cli/start.ts since the server's options went through the CLI's parser; server/main.ts before.
const entry = existsSync(join(root, 'cli', 'start.ts')) ? join(root, 'cli', 'start.ts') : join(root, 'server', 'main.ts');
const server = spawn(process.execPath, ['--import', tsx, entry, '--port', '0', '--provider', 'cpu', '--output-dir', out, '--model', join(here, 'demo/svd-tiny/model')], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
});
const stop = () => {
  server.kill('SIGTERM');
  rmSync(out, { recursive: true, force: true });
};
process.once('exit', stop);

try {
  const base = await new Promise<string>((ok, fail) => {
    let text = '';
    server.stdout!.setEncoding('utf8').on('data', (d: string) => {
      text += d;
      const m = /listening on (http:\/\/[^\s/]+\/)/.exec(text);
      if (m) ok(m[1]!);
    });
    server.once('exit', (code) => fail(new Error(`the server exited (${code}) before listening`)));
  });
  // A fresh connection per request (no keep-alive): a blocked server otherwise resets the idle
  // connection the client is about to reuse, and the measure would be of that instead.
  const get = <T>(path: string) =>
    new Promise<T>((ok, fail) => {
      httpGet(`${base}${path}`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => ok(JSON.parse(body) as T));
      }).on('error', fail);
    });
  while ((await get<{ status: string }>('api/health')).status !== 'ready') await new Promise((r) => setTimeout(r, 200));

  const settings = { width: +values.width!, height: +values.height!, frames: +values.frames!, steps: +values.steps!, formats: ['mp4'], saveToFolder: false };
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(readFileSync(join(here, 'demo/svd-tiny/input.png')))]), 'input.png');
  form.append('settings', JSON.stringify(settings));
  const { id } = (await (await fetch(`${base}api/jobs`, { method: 'POST', body: form })).json()) as { id: string };

  // Sequential requests: each is sent --interval ms after the previous answer.
  const during: number[] = [];
  const started = performance.now();
  let seenRunning = false;
  for (;;) {
    const t = performance.now();
    const h = await get<{ queue: { running: string | null } }>('api/health');
    const ms = performance.now() - t;
    if (h.queue.running === id) {
      seenRunning = true;
      during.push(ms);
    } else if (seenRunning) {
      break;
    }
    await new Promise((r) => setTimeout(r, +values.interval!));
  }
  const job = await get<{ status: string; timings?: { totalMs: number } }>(`api/jobs/${id}`);
  const sorted = [...during].sort((a, b) => a - b);
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
  console.log(machineLine('cpu'));
  console.log(`tree: ${root} (commit ${commit})`);
  console.log(`job: ${JSON.stringify(settings)} → ${job.status}, ${((job.timings?.totalMs ?? 0) / 1000).toFixed(1)} s in the pipeline, ${((performance.now() - started) / 1000).toFixed(1)} s watched`);
  console.log(`health requests while it ran: ${during.length}`);
  console.log(`health latency: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`);
} finally {
  stop();
}

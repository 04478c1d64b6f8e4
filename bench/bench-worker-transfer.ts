// How a worker's finished frames best reach the server: 8-bit RGB for 1024x576 x 25 frames
// (44 MB), through a file (what the workers do) or as one IPC message with 'advanced' (structured
// clone) serialisation. Prints the time from asking to having the bytes in hand, and the longest
// the server's event loop was blocked meanwhile (what the page and the health check would feel).
//   npm run bench:worker-transfer -- [--frames 25 --width 1024 --height 576 --runs 5]
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../common/settings.js';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({
  options: {
    child: { type: 'boolean' },
    frames: { type: 'string', default: '25' },
    width: { type: 'string', default: String(DEFAULTS.width) },
    height: { type: 'string', default: String(DEFAULTS.height) },
    runs: { type: 'string', default: '5' },
  },
});
const bytes = +values.frames! * +values.width! * +values.height! * 3;

if (values.child) {
  const rgb = new Uint8Array(bytes).map((_, i) => i & 255);
  process.on('message', async (m: { via: 'file' | 'ipc'; path?: string }) => {
    if (m.via === 'file') {
      await writeFile(m.path!, rgb);
      process.send!({ path: m.path });
    } else {
      process.send!({ rgb });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!('ready');
} else {
  const dir = mkdtempSync(join(tmpdir(), 'svd-transfer-'));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const child = fork(import.meta.filename, ['--child', '--frames', values.frames!, '--width', values.width!, '--height', values.height!], { execArgv: ['--import', tsx], serialization: 'advanced' });
  await new Promise((ok) => child.once('message', ok));
  const trial = async (via: 'file' | 'ipc') => {
    let last = performance.now();
    let maxBlock = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      maxBlock = Math.max(maxBlock, now - last);
      last = now;
    }, 1);
    const t = performance.now();
    const path = join(dir, 'frames.rgb');
    const reply = await new Promise<{ path?: string; rgb?: Uint8Array }>((ok) => {
      child.once('message', ok);
      child.send({ via, path });
    });
    const data = via === 'file' ? await readFile(reply.path!) : reply.rgb!;
    const ms = performance.now() - t;
    clearInterval(tick);
    if (data.length !== bytes) throw new Error(`${via}: got ${data.length} bytes, expected ${bytes}`);
    rmSync(path, { force: true });
    return { ms, maxBlock };
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(machineLine('cpu'));
  console.log(`frames: ${values.frames} x ${values.width}x${values.height} RGB = ${(bytes / 1e6).toFixed(1)} MB, median of ${values.runs} runs`);
  for (const via of ['file', 'ipc'] as const) {
    const runs = [];
    for (let i = 0; i < +values.runs!; i++) runs.push(await trial(via));
    console.log(
      `${via === 'file' ? 'file in the job folder' : "IPC message ('advanced')"}: ${median(runs.map((r) => r.ms)).toFixed(0)} ms, server event loop blocked at most ${median(runs.map((r) => r.maxBlock)).toFixed(0)} ms`,
    );
  }
  child.disconnect();
  rmSync(dir, { recursive: true, force: true });
}

// Measures the host memory a job takes on the CPU provider, above the loaded model, by stage: the
// peak resident set (VmHWM, reset between stages through /proc/self/clear_refs) of a fresh
// process per job shape, and of a second job in the same process (what the arenas keep). The
// planner's CPU constants (models/plan/host-memory.ts) are fitted to these numbers (BENCHMARKS.md).
//   npm run bench:cpu-memory -- [--model demo/svd-tiny/model] [--sizes 128x128,256x256]
//     [--frames 16,32] [--chunks 1,8,16] [--steps 1]
// With --full-decoder, SVD-XT's temporal decoder alone (random weights, fp32) at each size and
// chunk: how its memory compares with the demo model's at the decoder's width.
// Linux only (it reads /proc).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { parseSettings } from '../common/settings.js';
import { GraphBuilder } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { buildVaeDecoder } from '../models/networks/vae.js';
import { SVD_XT_VAE } from '../models/reference-configs.js';
import { graphFormsFor, sessionOptions } from '../models/runtime/runtime.js';
import { DEMO_IMAGE, DEMO_MODEL } from '../models/paths.js';
import { SvdPipeline } from '../models/pipeline/pipeline.js';
import { prepareImage } from '../models/pipeline/prepare-image.js';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEMO_MODEL },
    sizes: { type: 'string', default: '128x128,256x256' },
    frames: { type: 'string', default: '16,32' },
    chunks: { type: 'string', default: '1,8,16' },
    steps: { type: 'string', default: '1' },
    one: { type: 'string' },
    'full-decoder': { type: 'boolean', default: false },
  },
});

const MiB = 2 ** 20;
const status = (key: 'VmRSS' | 'VmHWM') => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
/** Resets VmHWM to the current resident set (Linux 4.0+). */
const resetPeak = () => writeFileSync('/proc/self/clear_refs', '5');

const fullDecoderPath = join(tmpdir(), 'svd-bench-cpu-memory-decoder.onnx');

if (values.one && values['full-decoder']) {
  // The full-size decoder on one chunk: W,H,_,chunk.
  const [width, height, , chunk] = values.one.split(',').map(Number) as [number, number, number, number];
  const session = await ort.InferenceSession.create(fullDecoderPath, sessionOptions('cpu'));
  const latents = new ort.Tensor(
    'float32',
    new Float32Array(chunk * 4 * (height / 8) * (width / 8)).map((_, i) => Math.sin(i)),
    [chunk, 4, height / 8, width / 8],
  );
  const base = status('VmRSS');
  resetPeak();
  await session.run({ latents });
  const decoding = status('VmHWM') - base;
  await session.release();
  console.log(JSON.stringify({ first: { base, sampling: 0, decoding, after: 0 }, second: { sampling: 0, decoding: 0 } }));
} else if (values.one) {
  // One job shape in this process: W,H,F,chunk.
  const [width, height, frames, decodeChunk] = values.one.split(',').map(Number) as [number, number, number, number];
  const pipeline = await SvdPipeline.load(values.model!, { provider: 'cpu', cacheDir: join(tmpdir(), 'svd-bench-cpu-memory') });
  const image = await prepareImage(DEMO_IMAGE, { width, height, framing: { mode: 'stretch' } });
  const settings = parseSettings({ width, height, frames, decodeChunk, steps: Number(values.steps), seed: 1 });
  const job = async () => {
    const base = status('VmRSS');
    resetPeak();
    let sampling = 0;
    await pipeline.generate(image, settings, {
      onProgress: (e) => {
        if (e.stage === 'decoding' && e.chunk === 1) {
          sampling = status('VmHWM') - base;
          resetPeak();
        }
      },
    });
    return { base, sampling, decoding: status('VmHWM') - base, after: status('VmRSS') - base };
  };
  const first = await job();
  const second = await job();
  await pipeline.release();
  console.log(JSON.stringify({ width, height, frames, decodeChunk, first, second }));
} else {
  console.log(machineLine('cpu'));
  if (values['full-decoder']) {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new RandomWeights(3) });
    buildVaeDecoder(b, SVD_XT_VAE, { forms: graphFormsFor('cpu') });
    b.save(fullDecoderPath);
    console.log(`SVD-XT's decoder alone (fp32, random weights): the sampling columns do not apply`);
  }
  console.log('| size | frames | chunk | loaded MiB | sampling peak MiB | decoding peak MiB | held after MiB | 2nd job: sampling / decoding MiB | decoding B per frame·pixel |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const size of values.sizes!.split(',')) {
    const [w, h] = size.split('x').map(Number) as [number, number];
    for (const frames of values.frames!.split(',').map(Number)) {
      for (const chunk of values.chunks!.split(',').map(Number)) {
        if (chunk > frames) continue;
        const args = ['--model', values.model!, '--steps', values.steps!, '--one', `${w},${h},${frames},${chunk}`, ...(values['full-decoder'] ? ['--full-decoder'] : [])];
        const out = execFileSync(process.execPath, [...process.execArgv, import.meta.filename, ...args], {
          encoding: 'utf8',
        });
        const r = JSON.parse(out.trim().split('\n').at(-1)!) as {
          first: { base: number; sampling: number; decoding: number; after: number };
          second: { sampling: number; decoding: number };
        };
        const f = (x: number) => x.toFixed(0);
        const perPixel = (r.first.decoding * MiB) / (chunk * w * h);
        console.log(
          `| ${size} | ${frames} | ${chunk} | ${f(r.first.base)} | ${f(r.first.sampling)} | ${f(r.first.decoding)} | ${f(r.first.after)} | ${f(r.second.sampling)} / ${f(r.second.decoding)} | ${perPixel.toFixed(0)} |`,
        );
      }
    }
  }
}

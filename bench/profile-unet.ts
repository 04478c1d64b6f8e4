// Per-operator profile of one full-size UNet step (random weights) on a provider, using
// onnxruntime's profiler: total time by operator type and provider, plus the slowest nodes.
//   npm run profile:unet -- [--provider webgpu] [--frames 25] [--width 1024] [--height 576] [--batch 2] [--out DIR]
//     [--runs 2] [--no-profile] (times and GPU memory only) [--reuse] (keep an earlier build in DIR)
import { existsSync, readFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { buildUNet } from '../models/networks/unet.js';
import { SVD_XT_UNET } from '../models/reference-configs.js';
import { graphFormsFor, sessionOptions, type Provider } from '../models/runtime/runtime.js';
import { gpuMemoryMonitor, machineLine } from './bench-env.js';

const { values } = parseArgs({
  options: {
    provider: { type: 'string', default: 'webgpu' },
    frames: { type: 'string', default: '25' },
    width: { type: 'string', default: '1024' },
    height: { type: 'string', default: '576' },
    batch: { type: 'string', default: '2' },
    out: { type: 'string', default: 'bench-out' },
    runs: { type: 'string', default: '2' },
    'no-profile': { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
  },
});
const profiling = !values['no-profile'];
const gpu = gpuMemoryMonitor();
console.log(machineLine(values.provider!), JSON.stringify(graphFormsFor(values.provider as Provider)));
mkdirSync(values.out!, { recursive: true });
// Same name and weights as `npm run bench` builds, so either can reuse the other's file.
const path = join(values.out!, 'unet.onnx');
if (!(values.reuse && existsSync(path))) {
  const b = new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights(3) });
  buildUNet(b, SVD_XT_UNET, { forms: graphFormsFor(values.provider as Provider) });
  b.save(path);
}
const [B, F, h, w] = [Number(values.batch), Number(values.frames), Number(values.height) / 8, Number(values.width) / 8];
const t0 = performance.now();
const session = await ort.InferenceSession.create(path, { ...sessionOptions(values.provider as Provider), enableProfiling: profiling, profileFilePrefix: join(values.out!, 'ort-profile') });
console.log(`session created in ${((performance.now() - t0) / 1000).toFixed(1)} s; GPU memory ${gpu.lastMiB} MiB`);
const feeds = {
  sample: new ort.Tensor(
    'float32',
    new Float32Array(B * F * 8 * h * w).map((_, i) => Math.sin(i) * 0.5),
    [B, F, 8, h, w],
  ),
  timestep: new ort.Tensor('float32', Float32Array.of(1.0), [1]),
  encoder_hidden_states: new ort.Tensor(
    'float32',
    new Float32Array(B * 1024).map((_, i) => Math.cos(i)),
    [B, 1, 1024],
  ),
  added_time_ids: new ort.Tensor(
    'float32',
    Float32Array.from({ length: B * 3 }, (_, i) => [6, 127, 0.02][i % 3]!),
    [B, 3],
  ),
};
const runs = Number(values.runs);
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  const out = await session.run(feeds);
  await new Promise((r) => setTimeout(r, 300));
  console.log(
    `run ${i}: ${((performance.now() - t - 300) / 1000).toFixed(2)} s, out[0] = ${(out.model_output!.data as Float32Array)[0]}, GPU peak ${gpu.peakMiB} MiB (${gpu.name ?? 'no nvidia-smi'})`,
  );
}
if (!profiling) {
  await session.release();
  gpu.stop();
  process.exit(0);
}
session.endProfiling();
gpu.stop();
const profile = readdirSync(values.out!)
  .filter((f) => f.startsWith('ort-profile') && f.endsWith('.json'))
  .sort()
  .pop();
if (!profile) throw new Error('onnxruntime wrote no profile file');
const file = join(values.out!, profile);
const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string; provider?: string } }[];
// Keep the last run only (the first ones include warm-up).
const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
const second = nodes.slice((nodes.length * (runs - 1)) / runs);
const byOp = new Map<string, { us: number; n: number }>();
for (const e of second) {
  const key = `${e.args?.op_name} @ ${e.args?.provider}`;
  const v = byOp.get(key) ?? { us: 0, n: 0 };
  v.us += e.dur;
  v.n++;
  byOp.set(key, v);
}
const total = second.reduce((s, e) => s + e.dur, 0);
console.log(`\nprofiled node time ${(total / 1e6).toFixed(2)} s over ${second.length} nodes`);
console.log('| op @ provider | ms | nodes | share |\n| --- | --- | --- | --- |');
for (const [k, v] of [...byOp].sort((a, b) => b[1].us - a[1].us).slice(0, 25)) console.log(`| ${k} | ${(v.us / 1000).toFixed(1)} | ${v.n} | ${((100 * v.us) / total).toFixed(1)}% |`);
console.log('\nslowest nodes:');
for (const e of [...second].sort((a, b) => b.dur - a.dur).slice(0, 15))
  console.log(`  ${(e.dur / 1000).toFixed(1)} ms ${e.name.replace('_kernel_time', '')} (${e.args?.op_name} @ ${e.args?.provider})`);
await session.release();

// Times the full-size temporal VAE decoder (random weights) on one provider: each chunk size
// in a fresh session, or a sequence of chunk sizes on one session, repeated (as the pipeline
// decodes 25 frames in chunks 8, 8, 8, 1: warm repeats show what a running server pays).
//   npm run bench:decoder -- [--provider webgpu] [--chunks 8,4,2] [--sequence 8,8,8,1 --repeat 3]
//     [--width 1024] [--height 576] (graph forms: SVD_GRAPH_FORMS, see models/runtime/runtime.ts)
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { buildVaeDecoder } from '../models/networks/vae.js';
import { SVD_XT_VAE } from '../models/reference-configs.js';
import { graphFormsFor, sessionOptions, type Provider } from '../models/runtime/runtime.js';
import { gpuMemoryMonitor, machineLine } from './bench-env.js';

const { values } = parseArgs({
  options: {
    provider: { type: 'string', default: 'webgpu' },
    chunks: { type: 'string', default: '8,4,2' },
    sequence: { type: 'string' },
    repeat: { type: 'string', default: '3' },
    width: { type: 'string', default: '1024' },
    height: { type: 'string', default: '576' },
    out: { type: 'string', default: 'bench-out' },
  },
});
const provider = values.provider as Provider;
const forms = graphFormsFor(provider);
console.log(machineLine(provider), JSON.stringify(forms));
mkdirSync(values.out!, { recursive: true });
const path = join(values.out!, 'decoder.onnx');
const b = new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights(3) });
buildVaeDecoder(b, SVD_XT_VAE, { forms });
b.save(path);
const [h, w] = [Number(values.height) / 8, Number(values.width) / 8];
const latents = (chunk: number) =>
  new ort.Tensor(
    'float32',
    new Float32Array(chunk * 4 * h * w).map((_, i) => Math.sin(i)),
    [chunk, 4, h, w],
  );
const sec = (ms: number) => (ms / 1000).toFixed(2);
const gpu = gpuMemoryMonitor();

if (values.sequence) {
  const sequence = values.sequence.split(',').map(Number);
  const s = await ort.InferenceSession.create(path, sessionOptions(provider));
  for (let r = 0; r < Number(values.repeat); r++) {
    const times: string[] = [];
    const t0 = performance.now();
    for (const chunk of sequence) {
      const t = performance.now();
      await s.run({ latents: latents(chunk) });
      times.push(`${chunk}: ${sec(performance.now() - t)}`);
    }
    console.log(`| sequence pass ${r} | ${times.join(', ')} | total ${sec(performance.now() - t0)} s | GPU peak ${gpu.peakMiB} MiB |`);
  }
  await s.release();
} else {
  for (const chunk of values.chunks!.split(',').map(Number)) {
    const s = await ort.InferenceSession.create(path, sessionOptions(provider));
    try {
      const times: number[] = [];
      for (let i = 0; i < 2; i++) {
        const t = performance.now();
        await s.run({ latents: latents(chunk) });
        times.push(performance.now() - t);
      }
      console.log(`| chunk ${chunk} | first ${sec(times[0]!)} s | second ${sec(times[1]!)} s | ${sec(times[1]! / chunk)} s per frame |`);
    } catch (err) {
      console.log(`| chunk ${chunk} | failed: ${(err as Error).message.split('\n')[0]} |`);
    }
    await s.release();
  }
}
gpu.stop();

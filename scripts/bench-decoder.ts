// Times the full-size temporal VAE decoder (random weights) at several chunk sizes on one
// provider and reports the ones that fail, with their error.
//   npm run bench:decoder -- [--provider webgpu] [--chunks 8,4,2] [--width 1024] [--height 576]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { buildVaeDecoder } from '../models/networks/vae.js';
import { SVD_XT_VAE } from '../models/reference-configs.js';
import { sessionOptions, type Provider } from '../models/pipeline/runtime.js';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({
  options: { provider: { type: 'string', default: 'webgpu' }, chunks: { type: 'string', default: '8,4,2' }, width: { type: 'string', default: '1024' }, height: { type: 'string', default: '576' }, out: { type: 'string', default: 'bench-out' } },
});
console.log(machineLine(values.provider!));
mkdirSync(values.out!, { recursive: true });
const path = join(values.out!, 'decoder.onnx');
const b = new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights(3) });
buildVaeDecoder(b, SVD_XT_VAE);
b.save(path);
const [h, w] = [Number(values.height) / 8, Number(values.width) / 8];
for (const chunk of values.chunks!.split(',').map(Number)) {
  const s = await ort.InferenceSession.create(path, sessionOptions(values.provider as Provider));
  const latents = new ort.Tensor('float32', new Float32Array(chunk * 4 * h * w).map((_, i) => Math.sin(i)), [chunk, 4, h, w]);
  try {
    const times: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      await s.run({ latents });
      times.push(performance.now() - t);
    }
    console.log(`| chunk ${chunk} | first ${(times[0]! / 1000).toFixed(2)} s | second ${(times[1]! / 1000).toFixed(2)} s | ${((times[1]! / chunk) / 1000).toFixed(3)} s per frame |`);
  } catch (err) {
    console.log(`| chunk ${chunk} | failed: ${(err as Error).message.split('\n')[0]} |`);
  }
  await s.release();
}

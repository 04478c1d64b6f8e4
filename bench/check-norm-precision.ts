// Is InstanceNormalization safe in fp16 on a provider at SVD-XT's largest GroupNorm
// (50 × 32 groups × 92,160 values)? Compares the provider's fp16 and fp32 results with a
// float64 reference computed here, on inputs with a large mean (the hard case for fp16 sums).
//   npm run check:norm-precision -- [--provider webgpu] [--out DIR]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, type ElemType } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { float32ArrayToHalf, halfArrayToFloat32 } from '../models/half.js';
import { sessionOptions, type Provider } from '../models/runtime/runtime.js';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({ options: { provider: { type: 'string', default: 'webgpu' }, out: { type: 'string', default: 'bench-out/norm' } } });
mkdirSync(values.out!, { recursive: true });
console.log(machineLine(values.provider!));
const [N, G, S] = [50, 32, 92160];
const x = new Float32Array(N * G * S);
let seed = 1;
const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
for (let i = 0; i < x.length; i++) x[i] = 3 + 2 * (rand() + rand() + rand() - 1.5);
const xh = float32ArrayToHalf(x);
const xq = halfArrayToFloat32(xh); // the fp16 input as the provider sees it

for (const dtype of ['float16', 'float32'] as ElemType[]) {
  const b = new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights() });
  const inp = b.input('x', dtype, [N, G, S]);
  const y = b.node('InstanceNormalization', [inp, b.constant(new Array(G).fill(1), dtype), b.constant(new Array(G).fill(0), dtype)], { epsilon: { f: 1e-5 } })[0]!;
  b.output(y, 'y', [N, G, S]);
  const path = join(values.out!, `instnorm-${dtype}.onnx`);
  b.save(path);
  const s = await ort.InferenceSession.create(path, sessionOptions(values.provider as Provider));
  const feed = dtype === 'float16' ? new ort.Tensor('float16', xh, [N, G, S]) : new ort.Tensor('float32', xq, [N, G, S]);
  const out = (await s.run({ x: feed })).y!;
  const got = dtype === 'float16' ? halfArrayToFloat32(out.data as Uint16Array) : (out.data as Float32Array);
  let maxErr = 0;
  let sq = 0;
  for (let g = 0; g < N * G; g++) {
    let mean = 0;
    for (let i = 0; i < S; i++) mean += xq[g * S + i]!;
    mean /= S;
    let v = 0;
    for (let i = 0; i < S; i++) v += (xq[g * S + i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / S + 1e-5);
    for (let i = 0; i < S; i++) {
      const e = Math.abs(got[g * S + i]! - (xq[g * S + i]! - mean) * inv);
      maxErr = Math.max(maxErr, e);
      sq += e * e;
    }
  }
  console.log(
    `InstanceNormalization ${dtype} on ${values.provider}: max abs error ${maxErr.toExponential(2)}, rms ${Math.sqrt(sq / x.length).toExponential(2)} (outputs have unit variance; fp16 rounding alone is ~5e-4)`,
  );
  await s.release();
}

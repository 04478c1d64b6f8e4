// Micro-benchmark of single operators at SVD-XT level-0 shapes on one provider, to find which
// forms of an operation are slow there (broadcast patterns, casts, transposes, slices).
//   npm run bench:ops -- [--provider webgpu]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, type Value } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { sessionOptions, type Provider } from '../models/runtime/runtime.js';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({ options: { provider: { type: 'string', default: 'webgpu' }, out: { type: 'string', default: 'bench-out/ops' } } });
mkdirSync(values.out!, { recursive: true });
console.log(machineLine(values.provider!));

interface Case {
  name: string;
  inputs: number[][];
  body: (b: GraphBuilder, xs: Value[]) => Value;
}
const big = [2, 320, 25, 9216];
const cases: Case[] = [
  { name: 'baseline: upload only [2,320,25,9216]', inputs: [big], body: (_b, [x]) => x! },
  { name: 'baseline: upload only 2 × [2,320,25,9216]', inputs: [big, big], body: (b, [x, y]) => b.concat([b.slice(x!, [0], [1], [0]), b.slice(y!, [0], [1], [0])], 0) },
  { name: 'Add same shape [2,320,25,9216]', inputs: [big, big], body: (b, [x, y]) => b.add(x!, y!) },
  { name: 'Add + [2,320,25,1]', inputs: [big, [2, 320, 25, 1]], body: (b, [x, y]) => b.add(x!, y!) },
  {
    name: 'Add + [320,1,1] on [50,320,72,128]',
    inputs: [
      [50, 320, 72, 128],
      [320, 1, 1],
    ],
    body: (b, [x, y]) => b.add(x!, y!),
  },
  {
    name: 'Add + [50,1,320] on [50,9216,320]',
    inputs: [
      [50, 9216, 320],
      [50, 1, 320],
    ],
    body: (b, [x, y]) => b.add(x!, y!),
  },
  { name: 'Add + [320] on [50,9216,320]', inputs: [[50, 9216, 320], [320]], body: (b, [x, y]) => b.add(x!, y!) },
  { name: 'Mul by scalar', inputs: [big], body: (b, [x]) => b.mul(x!, 0.5) },
  { name: 'Cast f16→f32', inputs: [big], body: (b, [x]) => b.cast(b.cast(x!, 'float32'), 'float16') },
  { name: 'Transpose [2,25,320,9216]→[0,2,1,3]', inputs: [[2, 25, 320, 9216]], body: (b, [x]) => b.transpose(x!, [0, 2, 1, 3]) },
  { name: 'Transpose [50,320,72,128]→[0,2,3,1]', inputs: [[50, 320, 72, 128]], body: (b, [x]) => b.transpose(x!, [0, 2, 3, 1]) },
  { name: 'Slice half of last dim [50,9216,2560]', inputs: [[50, 9216, 2560]], body: (b, [x]) => b.slice(x!, [0], [1280], [-1]) },
  {
    name: 'InstanceNorm f16 [50,32,92160]',
    inputs: [[50, 32, 92160]],
    body: (b, [x]) => b.node('InstanceNormalization', [x!, b.constant(new Array(32).fill(1), 'float16'), b.constant(new Array(32).fill(0), 'float16')], { epsilon: { f: 1e-5 } })[0]!,
  },
  {
    name: 'GroupNorm as built (f32 inside) [50,320,72,128]',
    inputs: [[50, 320, 72, 128]],
    body: (b, [x]) =>
      b.groupNorm(x!, { groups: 32, scale: b.constant(new Array(320).fill(1), 'float16', [320, 1, 1]), bias: b.constant(new Array(320).fill(0), 'float16', [320, 1, 1]), epsilon: 1e-5 }),
  },
  { name: 'Sigmoid (SiLU part)', inputs: [big], body: (b, [x]) => b.silu(x!) },
  { name: 'Erf GELU [50,9216,1280]', inputs: [[50, 9216, 1280]], body: (b, [x]) => b.gelu(x!) },
];

for (const c of cases) {
  const b = new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights() });
  const xs = c.inputs.map((dims, i) => b.input(`x${i}`, 'float16', dims));
  // Reduce the output to a few values so the copy back to the host is not what is timed.
  const y = c.body(b, xs);
  b.output(b.slice(b.reshape(y, [-1]), [0], [4], [0]), 'y', [4]);
  const path = join(values.out!, `op${cases.indexOf(c)}.onnx`);
  b.save(path);
  const s = await ort.InferenceSession.create(path, sessionOptions(values.provider as Provider));
  const feeds: Record<string, ort.Tensor> = {};
  let bytes = 0;
  c.inputs.forEach((dims, i) => {
    const n = dims.reduce((a, d) => a * d, 1);
    bytes += n * 2;
    feeds[`x${i}`] = new ort.Tensor('float16', new Uint16Array(n).fill(0x3c00), dims);
  });
  // Upload once, then time runs that reuse GPU copies is not possible with CPU tensors: time a
  // run of the graph with and without the op by subtracting an identity graph is overkill here;
  // inputs are uploaded each run, so the upload time is printed separately below.
  const times: number[] = [];
  for (let i = 0; i < 4; i++) {
    const t = performance.now();
    await s.run(feeds);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(`| ${c.name} | ${times[1]!.toFixed(1)} ms | inputs ${(bytes / 2 ** 30).toFixed(2)} GiB |`);
  await s.release();
}

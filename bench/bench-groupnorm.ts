// GroupNorm formulations at SVD-XT's largest size (50 × 320 × 72 × 128, 32 groups) on one
// provider: the input is made on the device (no upload in the timing) and each graph returns a
// few thousand values, compared with the first formulation's.
//   npm run bench:groupnorm -- [--provider webgpu] [--out DIR]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, type Value } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { halfArrayToFloat32 } from '../models/half.js';
import { sessionOptions, type Provider } from '../models/runtime/runtime.js';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({ options: { provider: { type: 'string', default: 'webgpu' }, out: { type: 'string', default: 'bench-out/groupnorm' } } });
mkdirSync(values.out!, { recursive: true });
console.log(machineLine(values.provider!));
const [N, C, H, W, G] = [50, 320, 72, 128, 32];

const forms: Record<string, (b: GraphBuilder, x: Value, scale: Value, bias: Value) => Value> = {
  'InstanceNormalization on [N, G, S] (current)': (b, x, scale, bias) => b.groupNorm(x, { groups: G, scale, bias, epsilon: 1e-5 }),
  'LayerNormalization on [N, G, S], unit scale': (b, x, scale, bias) => {
    const grouped = b.reshape(x, [0, G, -1]);
    const ones = b.expand(b.constant([1], b.dtype, [1]), b.dim(grouped, 2));
    const normed = b.node('LayerNormalization', [grouped, ones], { axis: { i: -1 }, epsilon: { f: 1e-5 } })[0]!;
    return b.add(b.mul(b.reshape(normed, b.shape(x)), scale), bias);
  },
  'two-stage ReduceMean in f32 on [N, G, C/G, H·W]': (b, x, scale, bias) => {
    const g = b.cast(b.reshape(x, [0, G, C / G, -1]), 'float32');
    const mean2 = (v: Value) => b.node('ReduceMean', [b.node('ReduceMean', [v], { axes: { ints: [3] }, keepdims: { i: 1 } })[0]!], { axes: { ints: [2] }, keepdims: { i: 1 } })[0]!;
    const d = b.sub(g, mean2(g));
    const rstd = b.node('Reciprocal', [b.node('Sqrt', [b.add(mean2(b.mul(d, d)), 1e-5)])[0]!])[0]!;
    return b.add(b.mul(b.reshape(b.cast(b.mul(d, rstd), b.dtype), b.shape(x)), scale), bias);
  },
};

/** x = 3 + 2·sin(i·0.37 + seed), i = 0 … N·C·H·W − 1, made on the device, flat fp16. */
function deviceInput(b: GraphBuilder): Value {
  const seed = b.input('seed', 'float32', [1]);
  const idx = b.node('Range', [b.constant([0], 'float32', []), b.constant([N * C * H * W], 'float32', []), b.constant([1], 'float32', [])], {}, { dtype: 'float32' })[0]!;
  return b.cast(b.add(b.mul(b.sin(b.add(b.mul(idx, 0.37), seed)), 2), 3), 'float16');
}

/** The first and last 4096 values of a flat tensor: enough to compare, little to copy back. */
const ends = (b: GraphBuilder, flat: Value) => b.concat([b.slice(flat, [0], [4096], [0]), b.slice(flat, [-4096], [N * C * H * W], [0])], 0);

/** Median of 6 runs, in ms, and the last output. */
async function time(path: string): Promise<{ ms: number; out: Float32Array }> {
  const s = await ort.InferenceSession.create(path, sessionOptions(values.provider as Provider));
  const feeds = { seed: new ort.Tensor('float32', Float32Array.of(0.5), [1]) };
  const times: number[] = [];
  let out: Float32Array = new Float32Array();
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    const r = await s.run(feeds);
    times.push(performance.now() - t);
    out = halfArrayToFloat32(r.y!.data as Uint16Array);
  }
  await s.release();
  times.sort((a, c) => a - c);
  return { ms: times[2]!, out };
}

let reference: Float32Array | undefined;
for (const [name, form] of Object.entries(forms)) {
  const b = new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights() });
  const x = b.reshape(deviceInput(b), [N, C, H, W]);
  const scale = b.constant(
    Array.from({ length: C }, (_, i) => 1 + i / C),
    'float16',
    [C, 1, 1],
  );
  const bias = b.constant(
    Array.from({ length: C }, (_, i) => i / C - 0.5),
    'float16',
    [C, 1, 1],
  );
  b.output(ends(b, b.reshape(form(b, x, scale, bias), [-1])), 'y', [8192]);
  const path = join(values.out!, `gn${Object.keys(forms).indexOf(name)}.onnx`);
  b.save(path);
  const { ms, out } = await time(path);
  reference ??= out;
  let diff = 0;
  for (let i = 0; i < out.length; i++) diff = Math.max(diff, Math.abs(out[i]! - reference[i]!));
  console.log(`| ${name} | ${ms.toFixed(1)} ms (input generation included) | max diff vs first ${diff.toExponential(1)} |`);
}

// The input generation alone, to subtract.
{
  const b = new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights() });
  b.output(ends(b, deviceInput(b)), 'y', [8192]);
  const path = join(values.out!, 'gn-input.onnx');
  b.save(path);
  console.log(`| input generation alone | ${(await time(path)).ms.toFixed(1)} ms |`);
}

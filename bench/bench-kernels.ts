// Candidate forms of the UNet's memory-bound layers (norms, GEGLU, convolution biases, residual
// adds) at SVD-XT's level-0 shapes on the CUDA provider, each a graph of its own, run under
// bench/cupti/kernel-trace.so so the GPU's own time per kernel is what is compared (onnxruntime's
// profiler times CUDA nodes when the host queues them). Each case runs --runs times; the wall-clock
// window of each run goes to windows.json (CUPTI's timestamps are the same clock), where
// bench/cupti/summarize.py finds each run's kernels.
//   CUDA_INJECTION64_PATH=… KERNEL_TRACE_OUT=trace.tsv npm run bench:kernels -- [--runs 4]
//   python3 bench/cupti/summarize.py trace.tsv --windows bench-out/kernels/windows.json
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { attr, GraphBuilder, type Value } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { sessionOptions } from '../models/runtime/runtime.js';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '4' }, out: { type: 'string', default: 'bench-out/kernels' } } });
const runs = Number(values.runs);
mkdirSync(values.out!, { recursive: true });
console.log(machineLine('cuda'));

const MS = 'com.microsoft';
interface Case {
  name: string;
  inputs: number[][];
  body: (b: GraphBuilder, xs: Value[]) => Value;
}
const ones = (b: GraphBuilder, n: number, dtype: 'float16' | 'float32' = 'float16') => b.constant(new Array(n).fill(1), dtype, [n]);
const zeros = (b: GraphBuilder, n: number, dtype: 'float16' | 'float32' = 'float16') => b.constant(new Array(n).fill(0), dtype, [n]);
const bias = (b: GraphBuilder, n: number) =>
  b.constant(
    Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1),
    'float16',
    [n],
  );
/** Both outputs of a two-output node reach the graph's output (a few values of each), so neither is pruned. */
const both = (b: GraphBuilder, x: Value, y: Value) => b.add(b.slice(b.reshape(x, [-1]), [0], [4], [0]), b.slice(b.reshape(y, [-1]), [0], [4], [0]));

function normCases(rows: number, c: number): Case[] {
  const shape = [rows / 9216 > 1 ? 50 : 50, rows / 50, c];
  return [
    { name: `LayerNormalization [${shape}]`, inputs: [shape], body: (b, [x]) => b.layerNorm(x!, { scale: ones(b, c), bias: zeros(b, c), epsilon: 1e-5 }) },
    {
      name: `Add + LayerNormalization [${shape}] (the sum kept)`,
      inputs: [shape, shape],
      body: (b, [x, s]) => {
        const sum = b.add(x!, s!);
        return both(b, b.layerNorm(sum, { scale: ones(b, c), bias: zeros(b, c), epsilon: 1e-5 }), sum);
      },
    },
    {
      name: `SkipLayerNormalization [${shape}] (the sum kept)`,
      inputs: [shape, shape],
      body: (b, [x, s]) => {
        const outs = b.node('SkipLayerNormalization', [x!, s!, ones(b, c), zeros(b, c)], { epsilon: attr.float(1e-5) }, { domain: MS, outputs: 4 });
        return both(b, outs[0]!, outs[3]!);
      },
    },
  ];
}

const L0 = [50, 9216, 320];
const GEGLU = [50, 9216, 2560];
const HALF = [50, 9216, 1280];
const IMAGE = [50, 72, 128, 320];
const cases: Case[] = [
  { name: `Add same shape [${L0}] (bandwidth)`, inputs: [L0, L0], body: (b, [x, y]) => b.add(x!, y!) },
  ...normCases(50 * 9216, 320),
  ...normCases(50 * 576, 1280),
  { name: `BiasSplitGelu [${GEGLU}]`, inputs: [GEGLU], body: (b, [x]) => b.node('BiasSplitGelu', [x!, bias(b, 2560)], {}, { domain: MS })[0]! },
  { name: `Mul(a, Gelu(g)) [${HALF}] x2`, inputs: [HALF, HALF], body: (b, [a, g]) => b.mul(a!, b.node('Gelu', [g!], {}, { domain: MS })[0]!) },
  { name: `Mul(a, BiasGelu(g, bias)) [${HALF}] x2`, inputs: [HALF, HALF], body: (b, [a, g]) => b.mul(a!, b.node('BiasGelu', [g!, bias(b, 1280)], {}, { domain: MS })[0]!) },
  {
    name: `NhwcConv 3x3 320→320 with bias [${IMAGE}]`,
    inputs: [IMAGE],
    body: (b, [x]) => b.node('NhwcConv', [x!, b.weight('conv.weight', [320, 3, 3, 320]), bias(b, 320)], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) }, { domain: MS })[0]!,
  },
  {
    name: `NhwcConv 3x3 320→320 no bias [${IMAGE}]`,
    inputs: [IMAGE],
    body: (b, [x]) => b.node('NhwcConv', [x!, b.weight('conv.weight', [320, 3, 3, 320])], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) }, { domain: MS })[0]!,
  },
  {
    name: `NhwcConv with bias, then Add(residual) [${IMAGE}]`,
    inputs: [IMAGE, IMAGE],
    body: (b, [x, r]) =>
      b.add(b.node('NhwcConv', [x!, b.weight('conv.weight', [320, 3, 3, 320]), bias(b, 320)], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) }, { domain: MS })[0]!, r!),
  },
  {
    name: `NhwcConv no bias, then BiasAdd(bias, residual) [${IMAGE}]`,
    inputs: [IMAGE, IMAGE],
    body: (b, [x, r]) => {
      const y = b.node('NhwcConv', [x!, b.weight('conv.weight', [320, 3, 3, 320])], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) }, { domain: MS })[0]!;
      const rows = b.reshape(y, [50, 9216, 320]);
      return b.node('BiasAdd', [rows, bias(b, 320), b.reshape(r!, [50, 9216, 320])], {}, { domain: MS })[0]!;
    },
  },
  {
    name: `GroupNorm NHWC + SiLU [${IMAGE}]`,
    inputs: [IMAGE],
    body: (b, [x]) =>
      b.node(
        'GroupNorm',
        [x!, ones(b, 320, 'float32'), zeros(b, 320, 'float32')],
        { groups: attr.int(32), epsilon: attr.float(1e-5), activation: attr.int(1), channels_last: attr.int(1) },
        { domain: MS },
      )[0]!,
  },
];

const windows: { name: string; run: number; startNs: number; endNs: number }[] = [];
const nowNs = () => Math.round((performance.timeOrigin + performance.now()) * 1e6);
for (const [i, c] of cases.entries()) {
  const b = new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights() });
  const xs = c.inputs.map((dims, k) => b.input(`x${k}`, 'float16', dims));
  // A few values of the result come back, so the copy to the host is not what is measured.
  const y = c.body(b, xs);
  b.output(b.slice(b.reshape(y, [-1]), [0], [4], [0]), 'y', [4]);
  const path = join(values.out!, `case${i}.onnx`);
  b.save(path);
  const s = await ort.InferenceSession.create(path, sessionOptions('cuda'));
  const feeds = Object.fromEntries(
    c.inputs.map((dims, k) => {
      const n = dims.reduce((a, d) => a * d, 1);
      return [
        `x${k}`,
        new ort.Tensor(
          'float16',
          new Uint16Array(n).map((_, j) => 0x3800 + (j % 997)),
          dims,
        ),
      ];
    }),
  );
  for (let r = 0; r < runs; r++) {
    const startNs = nowNs();
    await s.run(feeds);
    windows.push({ name: c.name, run: r, startNs, endNs: nowNs() });
    await sleep(20);
  }
  await s.release();
  console.log(`case ${i}: ${c.name}`);
}
writeFileSync(join(values.out!, 'windows.json'), JSON.stringify(windows));

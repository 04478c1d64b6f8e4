// Do the fused operators compute what the standard ones do, on the card? A two-level UNet at SVD-XT's
// widths (320 and 640, the widths the com.microsoft kernels take) with random weights, built twice
// in fp16 (the provider's default forms, and the same forms with no fusion), run on the same inputs;
// prints each output's difference in dB (peak 1: the UNet's outputs are of order 1). The fixture
// replay (`bench --check-fixture`) cannot show this: the tiny model's widths are ones the fused
// kernels do not take, so its graphs have none of them.
//   npm run check:fusions -- [--provider cuda] [--frames 3] [--height 16] [--width 24] [--work DIR]
//     [--forms-of cuda] [--fusions a+b] (another provider's forms, some fusions: e.g. on the CPU,
//     `--provider cpu --forms-of cuda --fusions skip-layer-norm`)
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { defineNetwork } from '../models/build.js';
import type { UNetConfig } from '../models/configs.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { SVD_XT_CONFIG_ONLY, SVD_XT_UNET } from '../models/reference-configs.js';
import { graphFormsFor, parseGraphForms, sessionOptions, type Provider } from '../models/runtime/runtime.js';
import { NormalGenerator } from '../models/pipeline/random.js';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({
  options: {
    provider: { type: 'string', default: 'cuda' },
    frames: { type: 'string', default: '3' },
    height: { type: 'string', default: '16' },
    width: { type: 'string', default: '24' },
    work: { type: 'string', default: 'bench-out/check-fusions' },
    'forms-of': { type: 'string' },
    fusions: { type: 'string' },
  },
});
const provider = values.provider as Provider;
const [F, h, w] = [values.frames, values.height, values.width].map(Number) as [number, number, number];
console.log(machineLine(provider));
mkdirSync(values.work!, { recursive: true });

const unet: UNetConfig = {
  ...SVD_XT_UNET,
  block_out_channels: [320, 640],
  down_block_types: ['CrossAttnDownBlockSpatioTemporal', 'DownBlockSpatioTemporal'],
  up_block_types: ['UpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal'],
  num_attention_heads: [5, 10],
  layers_per_block: 1,
  num_frames: F,
};
const model = { ...SVD_XT_CONFIG_ONLY, unet: { ...SVD_XT_CONFIG_ONLY.unet, config: unet } };
const formsOf = (values['forms-of'] ?? provider) as Provider;
const defaults = graphFormsFor(formsOf);
const fused = values.fusions ? parseGraphForms(`fusions=${values.fusions}`, defaults) : defaults;
if (fused.fusions.length === 0) throw new Error(`${formsOf}: its default forms use no fused operator; name some with --fusions`);

const rng = new NormalGenerator(5);
const tensor = (dims: number[]) => new ort.Tensor('float32', rng.normals(dims.reduce((a, b) => a * b, 1)), dims);
const feeds = {
  sample: tensor([2, F, unet.in_channels, h, w]),
  timestep: new ort.Tensor('float32', Float32Array.of(0.7), [1]),
  encoder_hidden_states: tensor([2, 1, 1024]),
  added_time_ids: new ort.Tensor('float32', Float32Array.of(6, 127, 0.02, 6, 127, 0.02), [2, 3]),
};

async function run(label: string, fusions: typeof fused.fusions): Promise<Float32Array> {
  const path = join(values.work!, `unet-${label}.onnx`);
  const b = defineNetwork(model, 'unet', new RandomWeights(3), { dtype: 'float16', attention: 'mha', forms: { ...fused, fusions } });
  const ops = b.operatorCounts();
  b.save(path);
  const session = await ort.InferenceSession.create(path, sessionOptions(provider));
  try {
    const out = (await session.run(feeds)).model_output!.data as Float32Array;
    const fusedOps = Object.entries(ops).filter(([op]) => op.startsWith('com.microsoft:'));
    console.log(`${label}: ${fusedOps.map(([op, n]) => `${op.slice(14)} ${n}`).join(', ') || 'standard operators only'}`);
    return Float32Array.from(out);
  } finally {
    await session.release();
  }
}

const standard = await run('standard', []);
const withFusions = await run('fused', fused.fusions);
let [mse, maxAbs, peak, nonFinite] = [0, 0, 0, 0];
for (let i = 0; i < standard.length; i++) {
  const d = withFusions[i]! - standard[i]!;
  if (!Number.isFinite(withFusions[i]!)) nonFinite++;
  mse += d * d;
  maxAbs = Math.max(maxAbs, Math.abs(d));
  peak = Math.max(peak, Math.abs(standard[i]!));
}
mse /= standard.length;
console.log(
  `fusions ${fused.fusions.join('+')} vs none, ${provider} fp16, ${standard.length} outputs: PSNR ${(10 * Math.log10(1 / mse)).toFixed(2)} dB, max |diff| ${maxAbs.toExponential(2)} (outputs up to ${peak.toFixed(2)}), non-finite ${nonFinite}`,
);

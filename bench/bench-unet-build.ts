// Builds the full-size SVD-XT UNet (real config, seeded random weights, fp16 by default) with
// external data, then loads it in onnxruntime-node. Prints build time, file sizes, peak RSS.
//   npm run bench:unet-build -- [--out DIR] [--dtype fp16|fp32] [--provider cpu|webgpu] [--keep]
import { rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { buildUNet } from '../models/networks/unet.js';
import { SVD_XT_UNET } from '../models/reference-configs.js';
import { machineLine } from './bench-env.js';

const { values } = parseArgs({
  options: { out: { type: 'string', default: 'bench-out' }, dtype: { type: 'string', default: 'fp16' }, provider: { type: 'string', default: 'cpu' }, keep: { type: 'boolean', default: false } },
});
const dtype = values.dtype === 'fp32' ? 'float32' : 'float16';
mkdirSync(values.out!, { recursive: true });
const path = join(values.out!, `unet-svd-xt-${values.dtype}.onnx`);
const rssMiB = () => (process.resourceUsage().maxRSS / 1024).toFixed(0);

console.log(machineLine(values.provider!));
let t = performance.now();
const b = new GraphBuilder({ dtype, attention: 'mha', weights: new RandomWeights(1) });
buildUNet(b, SVD_XT_UNET);
console.log(`graph: ${b.nodeCount} nodes, ${b.parameterCount.toLocaleString('en')} parameters, defined in ${((performance.now() - t) / 1000).toFixed(2)} s`);
t = performance.now();
const saved = b.save(path);
const buildS = (performance.now() - t) / 1000;
console.log(`written: ${path} ${(saved.modelBytes / 2 ** 20).toFixed(2)} MiB + ${saved.dataPath} ${(saved.dataBytes / 2 ** 30).toFixed(3)} GiB in ${buildS.toFixed(1)} s; peak RSS ${rssMiB()} MiB`);

t = performance.now();
try {
  const session = await ort.InferenceSession.create(path, { executionProviders: [values.provider!], graphOptimizationLevel: 'basic' });
  console.log(
    `loaded in onnxruntime-node (${values.provider}) in ${((performance.now() - t) / 1000).toFixed(1)} s: inputs ${session.inputNames.join(', ')}; outputs ${session.outputNames.join(', ')}; peak RSS ${rssMiB()} MiB`,
  );
  await session.release();
} catch (err) {
  console.log(`load failed on ${values.provider}: ${(err as Error).message.split('\n')[0]}`);
  process.exitCode = 1;
}
if (!values.keep) rmSync(values.out!, { recursive: true, force: true });

// Times the frame interpolator at full size (RIFE 4.25's widths, random weights unless --weights
// names an installed one): a video of --frames frames at --width x --height interpolated by
// --factor, after one warm-up pair, with the GPU's peak memory where nvidia-smi is present.
//   npm run bench:interpolate -- [--provider cuda] [--frames 25] [--width 1024] [--height 576] [--factor 4] [--repeat 2] [--weights DIR]
import { mkdirSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { convertInterpolator, defineInterpolator } from '../models/interpolator.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { RIFE_PAD_MULTIPLE } from '../models/networks/rife.js';
import { interpolatedCount } from '../common/video-chain.js';
import { FrameInterpolator } from '../models/pipeline/interpolate.js';
import { sessionOptions, type Provider } from '../models/runtime/runtime.js';
import { gpuMemoryMonitor, machineLine } from './bench-env.js';

const { values } = parseArgs({
  options: {
    provider: { type: 'string', default: 'cuda' },
    frames: { type: 'string', default: '25' },
    width: { type: 'string', default: '1024' },
    height: { type: 'string', default: '576' },
    factor: { type: 'string', default: '4' },
    repeat: { type: 'string', default: '2' },
    weights: { type: 'string' },
    out: { type: 'string', default: 'bench-out' },
  },
});
const provider = values.provider as Provider;
const [F, W, H, K] = [Number(values.frames), Number(values.width), Number(values.height), Number(values.factor)];
console.log(machineLine(provider));
mkdirSync(values.out!, { recursive: true });
let path: string;
if (values.weights) path = convertInterpolator(values.weights).path;
else {
  path = join(values.out!, 'rife-random.onnx');
  defineInterpolator(new RandomWeights(5), 'video').save(path);
}
const monitor = gpuMemoryMonitor();
const interpolator = await FrameInterpolator.open(path, { provider });
// A moving pattern, so the flows are not all zero.
const rgb = new Uint8Array(F * W * H * 3);
for (let f = 0; f < F; f++) for (let i = 0; i < W * H; i++) for (let c = 0; c < 3; c++) rgb[(f * W * H + i) * 3 + c] = 128 + 100 * Math.sin(((i % W) + 3 * f) / (9 + c) + Math.floor(i / W) / 13);
const t0 = performance.now();
await interpolator.interpolate({ rgb: rgb.subarray(0, 2 * W * H * 3), frameCount: 2, width: W, height: H }, K);
console.log(`warm-up pair: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
for (let r = 0; r < Number(values.repeat); r++) {
  const t = performance.now();
  const out = await interpolator.interpolate({ rgb, frameCount: F, width: W, height: H }, K);
  const s = (performance.now() - t) / 1000;
  console.log(`run ${r + 1}: ${F} frames ${W}x${H} ×${K} → ${out.frameCount} frames (expected ${interpolatedCount(F, K)}) in ${s.toFixed(2)} s, ${((F - 1) / s).toFixed(1)} pairs/s`);
}
await interpolator.release();
// The graph alone on one pair's feeds, made once (what the JavaScript around it costs is the difference).
{
  const session = await ort.InferenceSession.create(path, sessionOptions(provider));
  const n = K - 1;
  const feeds = {
    frames: new ort.Tensor('uint8', rgb.subarray(0, 2 * W * H * 3), [2, H, W, 3]),
    timestep: new ort.Tensor(
      'float32',
      Float32Array.from({ length: n }, (_, j) => (j + 1) / K),
      [n],
    ),
  };
  await session.run(feeds);
  const t = performance.now();
  for (let i = 0; i < F - 1; i++) await session.run(feeds);
  const [PH, PW] = [Math.ceil(H / RIFE_PAD_MULTIPLE) * RIFE_PAD_MULTIPLE, Math.ceil(W / RIFE_PAD_MULTIPLE) * RIFE_PAD_MULTIPLE];
  console.log(`network alone: ${F - 1} runs of ${n} frames at ${PW}x${PH} (bytes in and out) in ${((performance.now() - t) / 1000).toFixed(2)} s`);
  await session.release();
}
console.log(monitor.name ? `GPU ${monitor.name}: peak ${monitor.ownPeakMiB} MiB of this process` : 'no nvidia-smi: GPU memory not sampled');
monitor.stop();

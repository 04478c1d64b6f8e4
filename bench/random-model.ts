// Writes a full-size SVD-XT model directory with random weights: the diffusers layout (configs
// and fp16 safetensors, about 4.2 GB) that the server, CLI and workers load like a downloaded
// model, for measuring them end to end on a machine that cannot download the real one.
//   tsx bench/random-model.ts --out DIR [--seed 3]
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { componentOf, defineNetwork, NETWORKS } from '../models/build.js';
import { float32ArrayToHalf } from '../models/half.js';
import { WEIGHT_FILES } from '../models/model-dir.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { SVD_XT_CONFIG_ONLY, SVD_XT_FEATURE_EXTRACTOR, SVD_XT_IMAGE_ENCODER, SVD_XT_SCHEDULER, SVD_XT_UNET, SVD_XT_VAE } from '../models/reference-configs.js';
import { writeSafetensorsStreamed } from '../models/safetensors.js';

const COMPONENTS = [
  { key: 'unet', dir: 'unet', config: { _class_name: 'UNetSpatioTemporalConditionModel', ...SVD_XT_UNET } },
  { key: 'vae', dir: 'vae', config: { _class_name: 'AutoencoderKLTemporalDecoder', ...SVD_XT_VAE } },
  { key: 'imageEncoder', dir: 'image_encoder', config: { architectures: ['CLIPVisionModelWithProjection'], ...SVD_XT_IMAGE_ENCODER } },
] as const;

/**
 * Writes the model into `root` (kept when already complete: same seed, same files) and returns
 * `root`. The tensor names and shapes are the ones the networks read, so the directory is
 * exactly as complete as a real checkpoint.
 */
export function writeRandomModel(root: string, seed = 3, log: (line: string) => void = () => {}): string {
  const done = join(root, '.complete');
  if (existsSync(done)) return root;
  const tmp = `${root}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const json = (rel: string, value: unknown) => {
    mkdirSync(join(tmp, rel, '..'), { recursive: true });
    writeFileSync(join(tmp, rel), `${JSON.stringify(value, null, 2)}\n`);
  };
  json('model_index.json', {
    _class_name: 'StableVideoDiffusionPipeline',
    feature_extractor: ['transformers', 'CLIPImageProcessor'],
    image_encoder: ['transformers', 'CLIPVisionModelWithProjection'],
    scheduler: ['diffusers', 'EulerDiscreteScheduler'],
    unet: ['diffusers', 'UNetSpatioTemporalConditionModel'],
    vae: ['diffusers', 'AutoencoderKLTemporalDecoder'],
  });
  json('scheduler/scheduler_config.json', SVD_XT_SCHEDULER);
  json('feature_extractor/preprocessor_config.json', { ...SVD_XT_FEATURE_EXTRACTOR, crop_size: { height: 224, width: 224 } });
  const weights = new RandomWeights(seed);
  for (const c of COMPONENTS) {
    json(`${c.dir}/config.json`, c.config);
    // Defining a network reads no weight data (that happens when a file is written): cheap.
    const shapes = new Map<string, readonly number[]>();
    for (const network of NETWORKS) {
      if (componentOf(SVD_XT_CONFIG_ONLY, network) !== SVD_XT_CONFIG_ONLY[c.key]) continue;
      const b = defineNetwork(SVD_XT_CONFIG_ONLY, network, weights, { dtype: 'float16', attention: 'mha' });
      for (const [name, shape] of b.checkpointShapes) shapes.set(name, shape);
    }
    const file = join(tmp, c.dir, WEIGHT_FILES[c.dir][0]);
    const t = performance.now();
    writeSafetensorsStreamed(
      file,
      [...shapes].map(([name, shape]) => ({
        name,
        dtype: 'F16' as const,
        shape,
        bytes: () => {
          const half = float32ArrayToHalf(weights.load(name, shape));
          return new Uint8Array(half.buffer, half.byteOffset, half.byteLength);
        },
      })),
      { format: 'pt', note: `random weights (seed ${seed}) for benchmarks` },
    );
    log(`${c.dir}: ${shapes.size} tensors, ${(statSync(file).size / 2 ** 30).toFixed(2)} GiB in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  writeFileSync(join(tmp, '.complete'), `seed ${seed}\n`);
  rmSync(root, { recursive: true, force: true });
  renameSync(tmp, root);
  return root;
}

// Run as a script (not when bundled into another benchmark, where import.meta.url is the bundle's).
if (/random-model\.[jt]s$/.test(process.argv[1] ?? '')) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'bench-out/random-svd-xt' }, seed: { type: 'string', default: '3' } } });
  writeRandomModel(values.out!, Number(values.seed), console.log);
  console.log(`wrote ${values.out}`);
}

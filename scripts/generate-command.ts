// `npm run svd -- generate`: one image in, one video (and/or raw frames) out, with progress.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultModelDir } from '../models/paths.js';
import { SafetensorsFile, writeSafetensors, float32Tensor } from '../models/safetensors.js';
import { GenerationCancelled, SvdPipeline, type ProgressEvent } from '../models/pipeline/pipeline.js';
import { prepareImage, resizeModes } from '../models/pipeline/prepare-image.js';
import { gpuMemoryModes, providers, type GpuMemoryMode, type ProviderChoice } from '../models/pipeline/runtime.js';
import { parseSettings, type GenerationSettingsInput } from '../models/pipeline/settings.js';
import { encodeVideo, formatFromPath } from '../server/media/ffmpeg.js';
import { UsageError } from './usage-error.js';

export const GENERATE_HELP = `  generate --image FILE [--out video.mp4|.webm|.gif] [--frames-out frames.safetensors]
          [--model DIR] (default ${defaultModelDir()})
          [--width 1024] [--height 576] [--resize crop|fit|stretch] [--crop-x 0.5] [--crop-y 0.5]
          [--frames N] [--steps 25] [--sigmas 700,...,0] [--fps 7] [--motion-bucket 127] [--noise-aug 0.02]
          [--min-guidance 1] [--max-guidance 3] [--decode-chunk 8] [--seed N]
          [--provider auto|cuda|webgpu|cpu] [--dtype fp16|fp32] [--attention mha|matmul] [--cache DIR]
          [--gpu-memory auto|fast|lean] (WebGPU: fast needs ~40 GB, lean ~16 GB and is ~2x slower)
          [--noise-file F.safetensors] (use its cond_aug_noise and initial_noise instead of drawing)
`;

const num = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return n;
};

export async function runGenerate(args: string[]): Promise<void> {
  const opt = { type: 'string' } as const;
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      model: opt, image: opt, out: opt, 'frames-out': opt, width: opt, height: opt, resize: opt, 'crop-x': opt, 'crop-y': opt,
      frames: opt, steps: opt, sigmas: opt, fps: opt, 'motion-bucket': opt, 'noise-aug': opt, 'min-guidance': opt, 'max-guidance': opt,
      'decode-chunk': opt, seed: opt, provider: opt, dtype: opt, attention: opt, cache: opt, 'noise-file': opt, 'gpu-memory': opt,
    },
  });
  if (!values.image) throw new UsageError('generate needs --image FILE');
  const resize = values.resize ?? 'crop';
  if (!(resizeModes as readonly string[]).includes(resize)) throw new UsageError(`--resize must be one of ${resizeModes.join(', ')}, got "${resize}"`);
  const provider = (values.provider ?? 'auto') as ProviderChoice;
  if (!providers.includes(provider)) throw new UsageError(`--provider must be one of ${providers.join(', ')}, got "${values.provider}"`);
  const gpuMemory = (values['gpu-memory'] ?? 'auto') as GpuMemoryMode;
  if (!gpuMemoryModes.includes(gpuMemory)) throw new UsageError(`--gpu-memory must be one of ${gpuMemoryModes.join(', ')}, got "${values['gpu-memory']}"`);
  const attention = values.attention ?? 'mha';
  if (attention !== 'mha' && attention !== 'matmul') throw new UsageError(`--attention must be mha or matmul, got "${attention}"`);
  const { parseDType } = await import('./svd.js');
  const input: GenerationSettingsInput = {
    width: num('width', values.width),
    height: num('height', values.height),
    resize: resize as GenerationSettingsInput['resize'],
    cropX: num('crop-x', values['crop-x']),
    cropY: num('crop-y', values['crop-y']),
    frames: num('frames', values.frames),
    steps: num('steps', values.steps),
    sigmas: values.sigmas?.split(',').map((s) => num('sigmas', s)!),
    fps: num('fps', values.fps),
    motionBucket: num('motion-bucket', values['motion-bucket']),
    noiseAug: num('noise-aug', values['noise-aug']),
    minGuidance: num('min-guidance', values['min-guidance']),
    maxGuidance: num('max-guidance', values['max-guidance']),
    decodeChunk: num('decode-chunk', values['decode-chunk']),
    seed: num('seed', values.seed),
  };
  const settings = parseSettings(input);
  const outPath = values.out ?? (values['frames-out'] ? undefined : join('outputs', `svd-${new Date().toISOString().replace(/[:.]/g, '-')}.mp4`));
  if (outPath) formatFromPath(outPath);

  const image = await prepareImage(values.image, { width: settings.width, height: settings.height, mode: settings.resize, x: settings.cropX, y: settings.cropY });
  const onProgress = progressLine();
  const pipeline = await SvdPipeline.load(values.model ?? defaultModelDir(), {
    provider,
    dtype: values.dtype === undefined ? undefined : parseDType(values.dtype),
    attention,
    cacheDir: values.cache,
    gpuMemory,
    onProgress,
  });
  let noise;
  if (values['noise-file']) {
    const file = SafetensorsFile.open(values['noise-file']);
    try {
      for (const name of ['cond_aug_noise', 'initial_noise']) if (!file.tensors.has(name)) throw new UsageError(`${values['noise-file']} has no tensor "${name}"`);
      noise = { condAug: file.readFloat32('cond_aug_noise'), initial: file.readFloat32('initial_noise') };
    } finally {
      file.close();
    }
  }
  const controller = new AbortController();
  const onSigint = () => {
    console.error('\ncancelling after the current step…');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const result = await pipeline.generate(image, settings, { signal: controller.signal, onProgress, noise });
    if (values['frames-out']) {
      mkdirSync(dirname(values['frames-out']), { recursive: true });
      writeSafetensors(values['frames-out'], { frames: float32Tensor([result.frameCount, result.height, result.width, 3], result.frames) }, { seed: String(result.seed) });
    }
    if (outPath) {
      mkdirSync(dirname(outPath), { recursive: true });
      await encodeVideo(result, outPath);
    }
    console.error(
      `done: ${result.frameCount} frames ${result.width}x${result.height}, ${noise ? `noise from ${values['noise-file']}` : `seed ${result.seed}`}, provider ${result.provider} (${result.dtype}), ${(result.timings.totalMs / 1000).toFixed(1)} s${outPath ? ` → ${outPath}` : ''}${values['frames-out'] ? ` → ${values['frames-out']}` : ''}`,
    );
  } catch (err) {
    if (err instanceof GenerationCancelled) {
      console.error('cancelled; nothing was written');
      process.exitCode = 130;
      return;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    await pipeline.release();
  }
}

function progressLine() {
  const tty = process.stderr.isTTY;
  return (e: ProgressEvent) => {
    let line: string;
    switch (e.stage) {
      case 'loading':
        line = e.message;
        break;
      case 'encoding':
        line = 'encoding the image';
        break;
      case 'sampling':
        line = `sampling ${e.step}/${e.steps}  ${(e.elapsedMs / 1000).toFixed(1)} s elapsed, ETA ${(e.etaMs / 1000).toFixed(1)} s`;
        break;
      case 'decoding':
        line = `decoding ${e.chunk}/${e.chunks}`;
        break;
      case 'done':
        line = `finished in ${(e.elapsedMs / 1000).toFixed(1)} s`;
        break;
    }
    if (tty && (e.stage === 'sampling' || e.stage === 'decoding')) process.stderr.write(`\r\x1b[K${line}`);
    else process.stderr.write(`${tty ? '\r\x1b[K' : ''}${line}\n`);
  };
}

// `npm run svd -- generate`: one image in, one video (and/or raw frames) out, with progress.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { videoFormatOf } from '../common/video-formats.js';
import { fastModelDefaults, jobSettingsSchema, parseSettings, type GenerationSettings, type GenerationSettingsInput } from '../common/settings.js';
import { formatError } from '../common/messages.js';
import type { ChainProgress, GenerationProgress } from '../common/progress.js';
import { isModelName, MODEL_NAMES, modelDirOf } from '../models/download/catalog.js';
import { INSTALL_INTERPOLATOR_COMMAND } from '../common/video-chain.js';
import { findInterpolator, interpolatorWeights } from '../models/interpolator.js';
import { FrameInterpolator } from '../models/pipeline/interpolate.js';
import { randomSeed } from '../models/pipeline/random.js';
import { generateChain } from '../models/pipeline/video-chain.js';
import { openModelDir } from '../models/model-dir.js';
import { defaultModelDir } from '../models/paths.js';
import { SafetensorsFile, writeSafetensors, float32Tensor } from '../models/safetensors.js';
import { GenerationCancelled, SvdPipeline } from '../models/pipeline/pipeline.js';
import { prepareImage, resizeModes } from '../models/pipeline/prepare-image.js';
import { gpuMemoryModes, providerReport, providers, type GpuMemoryMode, type ProviderChoice } from '../models/runtime/runtime.js';
// The video encoder stays with the server's media code for now (see README's layout).
import { encodeVideo } from '../media/ffmpeg.js';
import { freePath, parseCommandArgs, parseDType } from './cli-args.js';
import { UsageError } from './usage-error.js';

export const GENERATE_HELP = `  generate --image FILE [--out video.mp4|.webm|.gif] [--frames-out frames.safetensors]
          [--model DIR|${Object.keys(MODEL_NAMES).join('|')}] (default ${defaultModelDir()}; a name is the model npm run setup installed)
          (animatelcm-svd-xt, 4 steps: its defaults are --steps 4 --min-guidance 1 --max-guidance 1.2 --motion-bucket 80)
          [--width 1024] [--height 576] [--resize crop|fit|stretch] [--crop-x 0.5] [--crop-y 0.5]
          [--frames N] [--steps 25] [--sigmas 700,...,0] [--fps 7] [--motion-bucket 127] [--noise-aug 0.02]
          [--min-guidance 1] [--max-guidance 3] [--decode-chunk 8] [--seed N]
          [--extend N] (1–8 segments, each from the last frame of the one before: N·F − (N − 1) frames)
          [--interpolate K] (1, 2, 4 or 8: K − 1 frames between each pair, fps × K; needs npm run setup -- --interpolator rife)
          [--variations N] (1–8 videos with seeds seed, seed + 1, …: name-seedS.mp4 each) [--interpolator DIR]
          [--provider auto|cuda|webgpu|cpu] [--dtype fp16|fp32] [--attention mha|matmul] [--cache DIR]
          [--gpu-memory auto|fast|lean] (WebGPU: fast needs ~40 GB, lean ~16 GB and is ~2x slower)
          [--noise-file F.safetensors] (use its cond_aug_noise and initial_noise instead of drawing)
          [--verbose] (what the CUDA and WebGPU checks found: libraries, drivers, onnxruntime's output)
          An existing file is never overwritten: the video goes to name-2.mp4, name-3.mp4, … instead.
`;

/** The flag that sets each setting; messages about a setting name the flag the user typed. */
const SETTING_FLAGS = {
  width: 'width',
  height: 'height',
  resize: 'resize',
  cropX: 'crop-x',
  cropY: 'crop-y',
  frames: 'frames',
  steps: 'steps',
  sigmas: 'sigmas',
  fps: 'fps',
  motionBucket: 'motion-bucket',
  noiseAug: 'noise-aug',
  minGuidance: 'min-guidance',
  maxGuidance: 'max-guidance',
  decodeChunk: 'decode-chunk',
  seed: 'seed',
  extend: 'extend',
  interpolate: 'interpolate',
} as const satisfies Record<keyof GenerationSettingsInput, string>;
const NUMERIC = ['width', 'height', 'cropX', 'cropY', 'frames', 'steps', 'fps', 'motionBucket', 'noiseAug', 'minGuidance', 'maxGuidance', 'decodeChunk', 'seed', 'extend', 'interpolate'] as const;
const flagOf = (key: string) => `--${(SETTING_FLAGS as Record<string, string>)[key] ?? key}`;

const num = (flag: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got "${v}"`);
  return n;
};

const opt = { type: 'string' } as const;
const OPTIONS = {
  model: opt,
  image: opt,
  out: opt,
  'frames-out': opt,
  provider: opt,
  dtype: opt,
  attention: opt,
  cache: opt,
  'noise-file': opt,
  'gpu-memory': opt,
  variations: opt,
  interpolator: opt,
  ...Object.fromEntries(Object.values(SETTING_FLAGS).map((f) => [f, opt])),
} as Record<string, typeof opt>;

export async function runGenerate(args: string[]): Promise<void> {
  // --verbose is the one flag without a value; taken out here so OPTIONS stays all strings
  const verbose = args.includes('--verbose');
  const values = parseCommandArgs(
    'generate',
    args.filter((a) => a !== '--verbose'),
    OPTIONS,
  );
  if (values.help) {
    console.log(`usage: npm run svd -- generate [options]\n\n${GENERATE_HELP}`);
    return;
  }
  if (!values.image) throw new UsageError('generate needs --image FILE (npm run svd -- generate --help lists the options)');
  const resize = values.resize ?? 'crop';
  if (!(resizeModes as readonly string[]).includes(resize)) throw new UsageError(`--resize must be one of ${resizeModes.join(', ')}, got "${resize}"`);
  const provider = (values.provider ?? 'auto') as ProviderChoice;
  if (!providers.includes(provider)) throw new UsageError(`--provider must be one of ${providers.join(', ')}, got "${values.provider}"`);
  const gpuMemory = (values['gpu-memory'] ?? 'auto') as GpuMemoryMode;
  if (!gpuMemoryModes.includes(gpuMemory)) throw new UsageError(`--gpu-memory must be one of ${gpuMemoryModes.join(', ')}, got "${values['gpu-memory']}"`);
  const attention = values.attention ?? 'mha';
  if (attention !== 'mha' && attention !== 'matmul') throw new UsageError(`--attention must be mha or matmul, got "${attention}"`);
  const dtype = values.dtype === undefined ? undefined : parseDType(values.dtype);
  const input: GenerationSettingsInput = {
    ...Object.fromEntries(NUMERIC.map((key) => [key, num(SETTING_FLAGS[key], values[SETTING_FLAGS[key]])])),
    resize: resize as GenerationSettingsInput['resize'],
    sigmas: values.sigmas?.split(',').map((s) => num('sigmas', s)!),
  };
  // The job schema: generation settings plus variations, each message naming the flag.
  const parsed = jobSettingsSchema.safeParse({ ...input, variations: num('variations', values.variations) });
  if (!parsed.success) throw new UsageError(formatError(parsed.error, flagOf));
  const { variations, ...jobSettings } = parsed.data;
  let settings: GenerationSettings = jobSettings;

  // Everything that can be checked is checked before the model is loaded and the work is done.
  const requested = values.out ?? (values['frames-out'] ? undefined : join('outputs', `svd-${new Date().toISOString().replace(/[:.]/g, '-')}.mp4`));
  if (requested && !videoFormatOf(requested)) throw new UsageError(`cannot tell the video format from --out "${requested}": use a name ending in .mp4, .webm or .gif`);
  const modelDir = values.model === undefined ? defaultModelDir() : modelDirOf(values.model);
  if (values.model !== undefined && isModelName(values.model) && !existsSync(modelDir))
    throw new UsageError(`${values.model} is not installed (looked in ${modelDir}): install it with npm run setup -- --model ${values.model}`);
  const model = openModelDir(modelDir); // says what is missing, and how to install it
  // A consistency-distilled model has its own defaults for what the flags leave out.
  if (model.scheduler.config._class_name === 'AnimateLCMSVDStochasticIterativeScheduler') {
    const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
    settings = parseSettings({ ...fastModelDefaults, ...given }, flagOf);
  }
  const interpolatorAt = settings.interpolate > 1 ? findInterpolator(modelDir, values.interpolator) : undefined;
  if (settings.interpolate > 1) {
    if (!interpolatorAt) throw new UsageError(`--interpolate ${settings.interpolate} needs a frame interpolator: install RIFE with ${INSTALL_INTERPOLATOR_COMMAND} (or give --interpolator DIR)`);
    interpolatorWeights(interpolatorAt); // says what is missing there
  }
  const firstSeed = settings.seed ?? randomSeed();
  const seeds = Array.from({ length: variations }, (_, v) => firstSeed + v);
  // One file per variation, named by its seed when there are several.
  const named = (path: string | undefined, seed: number) => (path && variations > 1 ? path.replace(/(\.[^./]+)?$/, (ext) => `-seed${seed}${ext}`) : path);
  const targets = seeds.map((seed) => ({ seed, out: target(named(requested, seed)), frames: target(named(values['frames-out'], seed)) }));
  let noise: { condAug: Float32Array; initial: Float32Array } | undefined;
  if (values['noise-file']) {
    const file = SafetensorsFile.open(values['noise-file']);
    try {
      for (const name of ['cond_aug_noise', 'initial_noise']) if (!file.tensors.has(name)) throw new UsageError(`${values['noise-file']} has no tensor "${name}"`);
      noise = { condAug: file.readFloat32('cond_aug_noise'), initial: file.readFloat32('initial_noise') };
    } finally {
      file.close();
    }
  }

  const image = await prepareImage(values.image, { width: settings.width, height: settings.height, mode: settings.resize, x: settings.cropX, y: settings.cropY });
  const onProgress = progressLine();
  if (verbose) console.error(await providerReport());
  const pipeline = await SvdPipeline.load(modelDir, {
    provider,
    dtype,
    attention,
    cacheDir: values.cache,
    gpuMemory,
    onProgress,
  });
  const interpolator = interpolatorAt ? await FrameInterpolator.load(interpolatorAt, { provider: pipeline.provider, cacheDir: values.cache }) : undefined;
  const controller = new AbortController();
  const onSigint = () => {
    console.error('\ncancelling after the current step…');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    // Sessions stay open from one variation to the next.
    for (const [v, t] of targets.entries()) {
      if (variations > 1) console.error(`variation ${v + 1}/${variations}, seed ${t.seed}`);
      const result = await generateChain(pipeline, image, { ...settings, seed: t.seed }, { signal: controller.signal, onProgress, noise, interpolator });
      let framesOut = t.frames;
      let outPath = t.out;
      if (framesOut) {
        framesOut = freePath(framesOut);
        const frames = result.frames ?? Float32Array.from(result.rgb, (x) => x / 255);
        writeSafetensors(framesOut, { frames: float32Tensor([result.frameCount, result.height, result.width, 3], frames) }, { seed: String(result.seed), seeds: result.seeds.join(',') });
      }
      if (outPath) {
        outPath = freePath(outPath);
        await encodeVideo(result, outPath);
      }
      const seedText = noise ? `noise from ${values['noise-file']}` : result.seeds.length > 1 ? `segment seeds ${result.seeds.join(', ')}` : `seed ${result.seed}`;
      console.error(
        `done: ${result.frameCount} frames ${result.width}x${result.height} at ${result.fps} fps, ${seedText}, provider ${result.provider} (${result.dtype}), ${(result.timings.totalMs / 1000).toFixed(1)} s${outPath ? ` → ${outPath}` : ''}${framesOut ? ` → ${framesOut}` : ''}`,
      );
    }
  } catch (err) {
    if (err instanceof GenerationCancelled) {
      console.error('cancelled; what was not finished was not written');
      process.exitCode = 130;
      return;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    await pipeline.release();
    await interpolator?.release();
  }
}

/** Where a result goes: `wanted`, or the next free name when that is taken (said here, before the work). */
function target(wanted: string | undefined): string | undefined {
  if (!wanted) return undefined;
  mkdirSync(dirname(wanted), { recursive: true });
  const free = freePath(wanted);
  if (free !== wanted) console.error(`${wanted} exists; writing ${free} instead (nothing is overwritten)`);
  return free;
}

function progressLine() {
  const tty = process.stderr.isTTY;
  return (e: ChainProgress | GenerationProgress) => {
    // "segment 2/3, step 7/25"; a single clip says "sampling 7/25" as before.
    const segment = 'segment' in e && e.segment ? `segment ${e.segment}/${e.segments}, ` : '';
    let line: string;
    switch (e.stage) {
      case 'loading':
        line = e.message;
        break;
      case 'encoding':
        line = `${segment}encoding the image`;
        break;
      case 'sampling':
        line = `${segment ? `${segment}step` : 'sampling'} ${e.step}/${e.steps}  ${(e.elapsedMs / 1000).toFixed(1)} s elapsed, ETA ${(e.etaMs / 1000).toFixed(1)} s`;
        break;
      case 'decoding':
        line = `${segment}decoding ${e.chunk}/${e.chunks}`;
        break;
      case 'interpolating':
        line = `interpolating ${e.pair}/${e.pairs}`;
        break;
      case 'done':
        line = `finished in ${(e.elapsedMs / 1000).toFixed(1)} s`;
        break;
    }
    if (tty && (e.stage === 'sampling' || e.stage === 'decoding' || e.stage === 'interpolating')) process.stderr.write(`\r\x1b[K${line}`);
    else process.stderr.write(`${tty ? '\r\x1b[K' : ''}${line}\n`);
  };
}

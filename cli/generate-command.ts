// `npm run svd -- generate`: one image in, one video (and/or raw frames) out, with progress.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { videoFormatOf } from '../common/video-formats.js';
import { formatError } from '../common/messages.js';
import type { ChainProgress, GenerationProgress } from '../common/progress.js';
import { demoDefaults, fastModelDefaults, jobSettingsSchema, modelDefaults, SETTINGS, type JobSettingsInput } from '../common/settings.js';
import { INSTALL_INTERPOLATOR_COMMAND } from '../common/video-chain.js';
import { isModelName, MODEL_NAMES, modelDirOf } from '../models/download/catalog.js';
import { findInterpolator, interpolatorWeights } from '../models/interpolator.js';
import { FrameInterpolator } from '../models/pipeline/interpolate.js';
import { randomSeed } from '../models/pipeline/random.js';
import { generateChain } from '../models/pipeline/video-chain.js';
import { openModelDir } from '../models/model-dir.js';
import { DEMO_ANIMATELCM_MODEL, DEMO_MODEL, defaultModelDir } from '../models/paths.js';
import { SafetensorsFile, writeSafetensors, float32Tensor } from '../models/safetensors.js';
import { GenerationCancelled, SvdPipeline } from '../models/pipeline/pipeline.js';
import { prepareImage } from '../models/pipeline/prepare-image.js';
import { gpuMemoryModes, providerReport, providers, type GpuMemoryMode, type ProviderChoice } from '../models/runtime/runtime.js';
// The video encoder stays with the server's media code for now (see README's layout).
import { encodeVideo } from '../media/ffmpeg.js';
import { freePath, parseCommandArgs, parseDType } from './cli-args.js';
import { asFlags, flagNamer, settingOptions, settingsFromFlags, settingsHelp } from './setting-flags.js';
import { UsageError } from './usage-error.js';

export const GENERATE_HELP = `  generate --image FILE [--out video.mp4|.webm|.gif] [--frames-out frames.safetensors]
          [--model DIR|${Object.keys(MODEL_NAMES).join('|')}] (default ${defaultModelDir()}; a name is the model npm run setup installed)
          [--provider auto|cuda|webgpu|cpu] [--dtype fp16|fp32] [--attention mha|matmul] [--cache DIR]
          [--gpu-memory auto|fast|lean] (WebGPU: fast needs ~40 GB, lean ~16 GB and is ~2x slower)
          [--noise-file F.safetensors] (use its cond_aug_noise and initial_noise instead of drawing)
          [--interpolator DIR] (the frame interpolator for --interpolate; default: the one setup installed)
          With --variations N, each video is named by its seed: name-seedS.mp4.
          [--verbose] (what the CUDA and WebGPU checks found: libraries, drivers, onnxruntime's output)
          An existing file is never overwritten: the video goes to name-2.mp4, name-3.mp4, … instead.
        settings (each optional):
${settingsHelp(SETTINGS, 10)}
          Where these are left out, the demo models (demo/…) take ${asFlags(demoDefaults, SETTINGS)},
          which finish in seconds on a CPU, and a 4-step model (animatelcm-svd-xt) takes
          ${asFlags(fastModelDefaults, SETTINGS)}.
`;

const flagOf = flagNamer(SETTINGS);

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
  interpolator: opt,
  ...settingOptions(SETTINGS),
} as Record<string, typeof opt>;

/** The tiny random-weight models the project ships: the page's demo defaults suit them. */
const isDemoModel = (dir: string) => [DEMO_MODEL, DEMO_ANIMATELCM_MODEL].includes(resolve(dir));

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
  const provider = (values.provider ?? 'auto') as ProviderChoice;
  if (!providers.includes(provider)) throw new UsageError(`--provider must be one of ${providers.join(', ')}, got "${values.provider}"`);
  const gpuMemory = (values['gpu-memory'] ?? 'auto') as GpuMemoryMode;
  if (!gpuMemoryModes.includes(gpuMemory)) throw new UsageError(`--gpu-memory must be one of ${gpuMemoryModes.join(', ')}, got "${values['gpu-memory']}"`);
  const attention = values.attention ?? 'mha';
  if (attention !== 'mha' && attention !== 'matmul') throw new UsageError(`--attention must be mha or matmul, got "${attention}"`);
  const dtype = values.dtype === undefined ? undefined : parseDType(values.dtype);
  const given = settingsFromFlags(values, SETTINGS) as JobSettingsInput;
  // The job's schema: the generation settings plus variations, and the rules between them.
  const parseJob = (input: JobSettingsInput) => {
    const r = jobSettingsSchema.safeParse(input);
    if (!r.success) throw new UsageError(formatError(r.error, flagOf));
    return r.data;
  };
  parseJob(given);

  // Everything that can be checked is checked before the model is loaded and the work is done.
  const requested = values.out ?? (values['frames-out'] ? undefined : join('outputs', `svd-${new Date().toISOString().replace(/[:.]/g, '-')}.mp4`));
  if (requested && !videoFormatOf(requested)) throw new UsageError(`cannot tell the video format from --out "${requested}": use a name ending in .mp4, .webm or .gif`);
  const modelDir = values.model === undefined ? defaultModelDir() : modelDirOf(values.model);
  if (values.model !== undefined && isModelName(values.model) && !existsSync(modelDir))
    throw new UsageError(`${values.model} is not installed (looked in ${modelDir}): install it with npm run setup -- --model ${values.model}`);
  const model = openModelDir(modelDir); // says what is missing, and how to install it
  // The demo models and a consistency-distilled one have their own defaults for what the flags leave out, as on the page.
  const fast = model.scheduler.config._class_name === 'AnimateLCMSVDStochasticIterativeScheduler';
  const withDefaults = { ...modelDefaults({ demo: isDemoModel(modelDir), fast }), ...given };
  // One parse gives both: the generation settings are the job's without what the server alone reads.
  const { variations, ...settings } = parseJob(withDefaults);
  const interpolatorAt = settings.interpolate > 1 ? findInterpolator(modelDir, values.interpolator) : undefined;
  if (settings.interpolate > 1) {
    if (!interpolatorAt) throw new UsageError(`--interpolate ${settings.interpolate} needs a frame interpolator: install RIFE with ${INSTALL_INTERPOLATOR_COMMAND} (or give --interpolator DIR)`);
    interpolatorWeights(interpolatorAt); // says what is missing there
  }
  const firstSeed = settings.seed ?? randomSeed();
  // One file per variation, named by its seed when there are several.
  const named = (path: string | undefined, seed: number) => (path && variations > 1 ? path.replace(/(\.[^./]+)?$/, (ext) => `-seed${seed}${ext}`) : path);
  const targets = Array.from({ length: variations }, (_, v) => firstSeed + v).map((seed) => ({ seed, out: target(named(requested, seed)), frames: target(named(values['frames-out'], seed)) }));
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

  const image = await prepareImage(values.image, settings);
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
      // Float frames only where --frames-out writes them.
      const result = await generateChain(pipeline, image, { ...settings, seed: t.seed }, { signal: controller.signal, onProgress, noise, interpolator, floatFrames: t.frames !== undefined });
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

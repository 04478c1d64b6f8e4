// Stable Video Diffusion image-to-video sampling, following diffusers'
// StableVideoDiffusionPipeline.__call__ step by step (see docs in README).
import * as ort from 'onnxruntime-node';
import { convertModel, type ConvertEvent } from '../convert.js';
import type { SvdModelDir } from '../model-dir.js';
import { networkContract, NETWORKS, type NetworkName } from '../build.js';
import type { AttentionImpl, GraphDType } from '../onnx/graph-builder.js';
import type { NetworkContract } from '../networks/contracts.js';
import { vaeScaleFactor } from '../networks/vae.js';
import { clipPixelValuesOf, rgbToSigned } from './clip-preprocess.js';
import type { RgbImage } from './prepare-image.js';
import { NormalGenerator, randomSeed } from './random.js';
import type { JobPlan, PlanBasis } from '../../common/job-plan.js';
import { deviceNow, planJob, WEBGPU_MAX_TENSOR_BYTES } from '../plan/job-plan.js';
import { defaultGpuBudgetMiB } from '../plan/gpu-budget.js';
import { cudaArenaModes, releaseSharedCudaArena, shareCudaArena, type CudaArenaMode } from '../runtime/cuda-arena.js';
import { residentMiB } from '../plan/host-memory.js';
import {
  bufferCacheFor,
  describeResolution,
  envChoice,
  graphFormsFor,
  resolveGpuMemoryMode,
  resolveProvider,
  sessionOptions,
  type GpuMemoryMode,
  type Provider,
  type ProviderChoice,
  type ProviderResolution,
} from '../runtime/runtime.js';
import { SessionPool } from './session-pool.js';
import { createScheduler } from '../schedulers/scheduler.js';
import { DenoiseBuffers, denoise } from './denoise-loop.js';
import { StepThreads, stepThreadCount } from './step-threads.js';
import { drawSeededBlocks, GivenStepNoise, NoiseThread, SeededStepNoise, type StepNoise } from './step-noise.js';
import { SETTINGS, type GenerationSettings, type SamplingSettings } from '../../common/settings.js';
import type { GenerationProgress as ProgressEvent } from '../../common/progress.js';

const f = Math.fround;

export type { GenerationProgress as ProgressEvent } from '../../common/progress.js';

export interface LoadOptions {
  provider?: ProviderChoice;
  /** Graph precision; default fp16 on GPU providers, fp32 on the CPU. */
  dtype?: GraphDType;
  attention?: AttentionImpl;
  cacheDir?: string;
  /** WebGPU only: see GpuMemoryMode. Default 'auto'. */
  gpuMemory?: GpuMemoryMode;
  /** Run the guidance batch's two videos together or one after the other; default: split in 'lean' mode. */
  guidanceBatch?: 'joint' | 'split';
  /** Keep all networks open ('shared') or open each stage's alone; default: separate in 'fast' mode. */
  sessions?: 'shared' | 'separate';
  /**
   * GPU memory this pipeline may use, MiB. Default on CUDA: the card's free memory at load (from
   * nvidia-smi) less 512 MiB, or SVD_GPU_MEMORY_BUDGET_MIB (plan/gpu-budget.ts). Every job is laid
   * out by the job planner (plan/job-plan.ts) or refused before it starts.
   */
  memoryBudgetMiB?: number;
  /** CUDA device id (one worker per card). */
  deviceId?: number;
  /**
   * CUDA: one memory arena for all the networks ('shared', the default, where it can be
   * registered: cuda-arena.ts) or one per session ('own'); SVD_CUDA_ARENA sets it for a process.
   */
  cudaArena?: CudaArenaMode;
  onProgress?: (e: ProgressEvent) => void;
}

export interface NoiseOverride {
  /** [1, 3, H, W] noise for the conditioning image (replaces the first random draw). */
  condAug?: Float32Array;
  /** [1, F, 4, h, w] initial latent noise before scaling by the initial sigma. */
  initial?: Float32Array;
  /** [1, F, 4, h, w] noise for each step of a sampler that adds noise between steps, in the order it asks. */
  steps?: readonly Float32Array[];
}

export interface GenerateOptions {
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  noise?: NoiseOverride;
  /** After each step: the current estimate of the clean latents, [F, C, h, w], for previews (the sampler's own array: copy it to keep it). */
  onPreview?: (denoised: Float32Array, dims: { frames: number; channels: number; height: number; width: number }) => void;
  /**
   * Also return the frames as floats (default true). A server needs only the 8-bit RGB: without
   * them the decoder's float output (four times the bytes) never leaves the device.
   */
  floatFrames?: boolean;
}

export interface GenerateResult {
  /** [F, H, W, 3] in [0, 1], before 8-bit conversion; absent where `floatFrames: false` was asked. */
  frames?: Float32Array;
  /** [F, H, W, 3] 8-bit RGB. */
  rgb: Uint8Array;
  frameCount: number;
  width: number;
  height: number;
  fps: number;
  seed: number;
  provider: Provider;
  dtype: GraphDType;
  /** loadMs: opening sessions inside this job (stage-by-stage layouts reopen each stage's networks); unetRunMs: time inside the UNet's session.run while sampling. */
  timings: { loadMs: number; encodeMs: number; sampleMs: number; unetRunMs: number; decodeMs: number; totalMs: number };
  /** How the job was laid out (plan/job-plan.ts). */
  plan: JobPlan;
}

export class GenerationCancelled extends Error {
  constructor() {
    super('generation cancelled');
    this.name = 'GenerationCancelled';
  }
}

/** A job's video size (the image's, once framed). */
type ImageSize = Pick<RgbImage, 'width' | 'height'>;

type Stage = 'encoding' | 'sampling' | 'decoding';

/** Registers the card's shared arena unless 'own' is asked; says why where it cannot be had. */
function useSharedCudaArena(asked: CudaArenaMode | undefined, deviceId: number, say: (message: string) => void): boolean {
  const mode = asked ?? envChoice('SVD_CUDA_ARENA', cudaArenaModes) ?? 'shared';
  if (mode === 'own') return false;
  const result = shareCudaArena(deviceId);
  if (!result.ok) say(`each network keeps its own GPU memory arena (one shared arena could not be set up: ${result.reason})`);
  return result.ok;
}

/** onnxruntime's words for a failed GPU allocation (CUDA arena, cudaMalloc, WebGPU buffers). */
const OUT_OF_MEMORY = /Failed to allocate memory|out of memory|cudaErrorMemoryAllocation|CUDA failure 2\b|BFCArena|Not enough memory/i;

export class SvdPipeline {
  private readonly pool: SessionPool;
  /** Draws a sampler's step noise while the UNet runs; kept from job to job. */
  private readonly noiseThread = new NoiseThread();
  /** The host work between UNet runs, shared across the cores (none on a machine of two or fewer). */
  private readonly stepThreads = new StepThreads(stepThreadCount());
  /** The denoising loop's working arrays, kept from job to job. */
  private readonly denoiseBuffers = new DenoiseBuffers();

  private constructor(
    readonly model: SvdModelDir,
    readonly resolution: ProviderResolution,
    readonly dtype: GraphDType,
    files: Record<NetworkName, string>,
    /** WebGPU's memory mode; undefined on other providers. */
    readonly gpuMemory: 'fast' | 'lean' | undefined,
    /** The device as the job planner sees it (on the CPU, the memory baseline is added once the sessions are open). */
    private readonly device: PlanBasis['device'],
    private readonly deviceId: number | undefined,
  ) {
    const options = () => sessionOptions(this.provider, { ...(gpuMemory ? { webgpuCache: bufferCacheFor(gpuMemory) } : {}), deviceId });
    const contracts = Object.fromEntries(NETWORKS.map((n) => [n, networkContract(model, n)])) as Record<NetworkName, NetworkContract>;
    this.pool = new SessionPool(files, contracts, options, device.sessions);
  }

  /** Closes every session, and gives the shared arena's memory back to the card with them (cuda-arena.ts). */
  private async closeAll(): Promise<void> {
    await this.pool.close();
    if (this.device.sharedArena) releaseSharedCudaArena(this.deviceId ?? 0);
  }

  /**
   * What the job planner needs to know of this device and model: the worker sends it to the
   * server with 'model-ready', so that the page is shown the plan the worker will follow.
   */
  get planBasis(): PlanBasis {
    const vae = this.model.vae.config;
    return {
      device: this.device,
      model: {
        frames: this.defaultFrames,
        weightsMiB: { unet: this.pool.weightsMiB('unet'), vae_decoder: this.pool.weightsMiB('vae_decoder'), encoders: this.pool.weightsMiB('image_encoder') + this.pool.weightsMiB('vae_encoder') },
        valueBytes: this.dtype === 'float16' ? 2 : 4,
        unetChannels: this.model.unet.config.block_out_channels[0]!,
        decoderChannels: vae.block_out_channels,
        decoderFrameHalves: graphFormsFor(this.provider).decoderFrameHalves,
      },
    };
  }

  get provider(): Provider {
    return this.resolution.provider;
  }

  get defaultFrames(): number {
    return this.model.unet.config.num_frames;
  }

  static async load(modelDir: string, opts: LoadOptions = {}): Promise<SvdPipeline> {
    const say = (message: string) => opts.onProgress?.({ stage: 'loading', message });
    const resolution = await resolveProvider(opts.provider ?? 'auto');
    say(describeResolution(resolution));
    const dtype = opts.dtype ?? (resolution.provider === 'cpu' ? 'float32' : 'float16');
    const { model, files } = convertModel({
      model: modelDir,
      dtype,
      attention: opts.attention ?? 'mha',
      forms: graphFormsFor(resolution.provider),
      cacheDir: opts.cacheDir,
      onEvent: (e: ConvertEvent) => {
        if (e.type === 'building') say(`building ${e.network} (${dtype})`);
      },
    });
    return SvdPipeline.create(model, files, resolution, dtype, say, opts);
  }

  /** Opens sessions for already-built network files (the benchmark builds random-weight ones). */
  static async create(
    model: SvdModelDir,
    files: Record<NetworkName, string>,
    resolution: ProviderResolution,
    dtype: GraphDType,
    say: (message: string) => void = () => {},
    opts: Pick<LoadOptions, 'gpuMemory' | 'guidanceBatch' | 'sessions' | 'memoryBudgetMiB' | 'deviceId' | 'cudaArena'> = {},
  ): Promise<SvdPipeline> {
    const gpuMemory = resolution.provider === 'webgpu' ? await resolveGpuMemoryMode(opts.gpuMemory ?? 'auto') : undefined;
    if (gpuMemory) say(`WebGPU memory mode ${gpuMemory}`);
    // Measured before any session of ours holds memory.
    const budget = opts.memoryBudgetMiB ?? (await defaultGpuBudgetMiB(resolution.provider, opts.deviceId));
    if (budget !== undefined) say(`GPU memory to use: ${(budget / 1024).toFixed(1)} GiB`);
    const sharedArena = resolution.provider === 'cuda' && useSharedCudaArena(opts.cudaArena, opts.deviceId ?? 0, say);
    const device: PlanBasis['device'] = {
      provider: resolution.provider,
      ...(sharedArena ? { sharedArena } : {}),
      ...(budget !== undefined ? { gpuBudgetMiB: budget } : {}),
      ...(resolution.provider === 'webgpu' ? { maxTensorBytes: WEBGPU_MAX_TENSOR_BYTES } : {}),
      guidanceBatch: opts.guidanceBatch ?? (gpuMemory === 'lean' ? 'split' : 'joint'),
      sessions: opts.sessions ?? (gpuMemory === 'fast' ? 'separate' : 'shared'),
    };
    const p = new SvdPipeline(model, resolution, dtype, files, gpuMemory, device, opts.deviceId);
    try {
      // All four open once here, so a broken model fails at load rather than in the first job.
      await p.pool.openAll(Object.keys(files) as NetworkName[], say);
      if (device.sessions === 'separate') await p.pool.close(); // each job opens what its stage needs
      // What a CPU job's memory is counted from: the process with its model loaded.
      if (resolution.provider === 'cpu') device.hostBaselineMiB = residentMiB();
    } catch (err) {
      await p.release();
      throw err;
    }
    return p;
  }

  async release(): Promise<void> {
    this.noiseThread.close();
    this.stepThreads.close();
    await this.closeAll();
    await this.pool.release();
  }

  /**
   * How a job of these settings runs here (plan/job-plan.ts): a MemoryPlanError, before anything
   * runs, when it does not fit. On the CPU the memory free now is counted, with what this process
   * holds from earlier jobs.
   */
  planJob(settings: SamplingSettings & ImageSize & Partial<Pick<GenerationSettings, 'extend' | 'interpolate'>>): JobPlan {
    return planJob(deviceNow(this.device, residentMiB), this.planBasis.model, settings);
  }

  /**
   * Runs one tiny job with the shapes of `settings` (one step), so that the first real job does
   * not pay for cuDNN's algorithm search and the arena's first growth (CUDA: seconds on the first
   * UNet step and on each new decoder shape; BENCHMARKS.md, CUDA section). What it warms lives in the open
   * sessions, so where a job of these settings reopens its stages (separate sessions: small
   * cards, WebGPU's 'fast' mode), or on the CPU, there is nothing to keep and it returns
   * undefined without running. Else the milliseconds it took.
   */
  async warmUp(settings: SamplingSettings & ImageSize): Promise<number | undefined> {
    if (this.provider === 'cpu' || this.planJob(settings).sessions === 'separate') return undefined;
    const t = performance.now();
    const image = { data: new Uint8Array(settings.width * settings.height * 3).fill(128), width: settings.width, height: settings.height };
    await this.generate(image, { ...settings, steps: 1, sigmas: undefined, seed: 0 });
    return performance.now() - t;
  }

  /**
   * One video from `image`, already at the video's size (see prepareImage), with the sampling
   * settings (diffusers' `__call__` arguments): the size is the image's.
   */
  generate(image: RgbImage, settings: SamplingSettings, opts?: GenerateOptions & { floatFrames?: true }): Promise<GenerateResult & { frames: Float32Array }>;
  generate(image: RgbImage, settings: SamplingSettings, opts: GenerateOptions): Promise<GenerateResult>;
  async generate(image: RgbImage, settings: SamplingSettings, opts: GenerateOptions = {}): Promise<GenerateResult> {
    const plan = this.planJob({ ...settings, width: image.width, height: image.height });
    const say = (message: string) => opts.onProgress?.({ stage: 'loading', message });
    for (const note of plan.notes) say(note);
    await this.pool.useLayout(plan.sessions);
    // A job after one that gave the card back makes the arena again before its sessions open.
    if (this.device.sharedArena) shareCudaArena(this.deviceId ?? 0);
    try {
      return { ...(await this.run(image, settings, plan, opts)), plan };
    } catch (err) {
      // A failed allocation leaves the arenas full: start the next job from a clean card.
      if (isOutOfMemory(err)) await this.closeAll();
      throw err;
    } finally {
      // With separate stages nothing stays open between jobs (or after a failed or cancelled one),
      // so an idle server leaves the card free.
      if (plan.sessions === 'separate') await this.closeAll();
    }
  }

  private async run(image: RgbImage, settings: SamplingSettings, plan: JobPlan, opts: GenerateOptions): Promise<Omit<GenerateResult, 'plan'>> {
    const started = performance.now();
    const { signal, onProgress } = opts;
    const checkCancelled = () => {
      if (signal?.aborted) throw new GenerationCancelled();
    };
    const say = (message: string) => onProgress?.({ stage: 'loading', message });
    const { width: W, height: H } = image;
    for (const [side, value] of [
      ['width', W],
      ['height', H],
    ] as const) {
      const r = SETTINGS[side].kind.schema.safeParse(value);
      if (!r.success) throw new Error(`the image's ${side} (${value}) ${r.error.issues[0]!.message}: bring it to the video's size first (prepareImage)`);
    }
    const sized = { ...settings, width: W, height: H, decodeChunk: plan.decodeChunk };
    const F = settings.frames ?? this.defaultFrames;
    const scale = vaeScaleFactor(this.model.vae.config);
    const dims: LatentDims = { F, W, H, h: H / scale, w: W / scale, C: this.model.vae.config.latent_channels };

    // 0. Noise: the seed's generator, or the caller's tensors (reference replay). The seed's
    // conditioning and initial noise are drawn on the noise thread while step 1 makes the CLIP
    // embedding, which needs only the image; the step noise goes on from where they end.
    const seed = settings.seed ?? randomSeed();
    const rng = new NormalGenerator(seed);
    const checkNoise = (name: string, data: Float32Array | undefined, n: number) => {
      if (data && data.length !== n) throw new Error(`${name} noise has ${data.length} values, expected ${n}`);
      return data;
    };
    const givenCond = checkNoise('conditioning', opts.noise?.condAug, 3 * H * W);
    const givenInitial = checkNoise('initial', opts.noise?.initial, F * dims.C * dims.h * dims.w);
    const drawn = drawSeededBlocks(rng, [givenCond ? 0 : 3 * H * W, givenInitial ? 0 : F * dims.C * dims.h * dims.w], this.noiseThread);
    const stepNoise = opts.noise?.steps ? new GivenStepNoise(opts.noise.steps) : new SeededStepNoise(rng, this.noiseThread);

    // 1. Conditioning: CLIP embedding of the clean image, VAE latent of the noise-augmented one.
    let loadMs = await this.pool.enterStage(['image_encoder', 'vae_encoder'], say);
    onProgress?.({ stage: 'encoding' });
    const condNoise = drawn.then(([cond]) => givenCond ?? cond!);
    const { embedding, latent } = await this.inStage('encoding', sized, () => this.encode(image, settings.noiseAug, condNoise));
    const initialNoise = givenInitial ?? (await drawn)[1]!;
    const encodeMs = performance.now() - started - loadMs;
    checkCancelled();

    // 2.–4. Schedule, initial latents, and the denoising loop with guidance.
    loadMs += await this.pool.enterStage(['unet'], say);
    const loopStart = performance.now();
    const { latents, unetRunMs } = await this.inStage('sampling', sized, () => this.sample({ embedding, latent, initialNoise, stepNoise, settings, dims, plan, opts, checkCancelled }));
    const sampleMs = performance.now() - loopStart;

    // 5. Decode in chunks of contiguous frames; the temporal layers see one chunk at a time.
    const decodeStart = performance.now();
    const decodeLoadMs = await this.pool.enterStage(['vae_decoder'], say);
    loadMs += decodeLoadMs;
    const { frames, rgb } = await this.inStage('decoding', sized, () => this.decode(latents, dims, plan, opts.floatFrames ?? true, checkCancelled, onProgress));
    const totalMs = performance.now() - started;
    onProgress?.({ stage: 'done', elapsedMs: totalMs });
    return {
      frames,
      rgb,
      frameCount: F,
      width: W,
      height: H,
      fps: settings.fps,
      seed,
      provider: this.provider,
      dtype: this.dtype,
      timings: { loadMs, encodeMs, sampleMs, unetRunMs, decodeMs: performance.now() - decodeStart - decodeLoadMs, totalMs },
    };
  }

  /** Runs one stage; a failed GPU allocation becomes a message naming the stage and what to lower. */
  private async inStage<T>(stage: Stage, settings: SamplingSettings & ImageSize & { decodeChunk: number }, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!isOutOfMemory(err)) throw err;
      const lower =
        stage === 'decoding' ? `lower the decode chunk (now ${settings.decodeChunk}) or the resolution` : stage === 'sampling' ? 'lower the frames or the resolution' : 'lower the resolution';
      throw new Error(
        `The GPU ran out of memory while ${stage} (${settings.width}x${settings.height}, ${settings.frames ?? this.defaultFrames} frames): ${lower}, or free the GPU. (${(err as Error).message.split('\n')[0]})`,
      );
    }
  }

  /**
   * CLIP image embedding [D] and the VAE latent [C, h, w] of the noise-augmented image. The noise
   * is awaited only for the VAE: the CLIP embedding is made while it is drawn.
   */
  private async encode(image: RgbImage, noiseAug: number, condNoise: Promise<Float32Array>): Promise<{ embedding: Float32Array; latent: Float32Array }> {
    const { width: W, height: H } = image;
    const fe = this.model.featureExtractor.config;
    const clipSize = this.model.imageEncoder.config.image_size;
    const signed = rgbToSigned(image.data, W, H);
    const clip = clipPixelValuesOf(signed, clipSize, fe.image_mean, fe.image_std);
    const embedding = (await this.pool.get('image_encoder').run({ pixel_values: new ort.Tensor('float32', clip, [1, 3, clipSize, clipSize]) })).image_embeds!.data as Float32Array;
    // The CLIP input is made: the VAE's is the same image, noise-augmented in place.
    const vaeIn = signed.data;
    const noise = await condNoise;
    for (let i = 0; i < vaeIn.length; i++) vaeIn[i] = f(vaeIn[i]! + f(noiseAug * noise[i]!));
    const latent = (await this.pool.get('vae_encoder').run({ image: new ort.Tensor('float32', vaeIn, [1, 3, H, W]) })).latent!.data as Float32Array;
    return { embedding, latent };
  }

  private async sample(a: {
    embedding: Float32Array;
    latent: Float32Array;
    initialNoise: Float32Array;
    stepNoise: StepNoise;
    settings: SamplingSettings;
    dims: LatentDims;
    plan: JobPlan;
    opts: GenerateOptions;
    checkCancelled: () => void;
  }): Promise<{ latents: Float32Array; unetRunMs: number }> {
    const { embedding, latent, settings, opts } = a;
    const { F, C, h, w } = a.dims;
    // 2. Schedule.
    const scheduler = createScheduler(this.model.scheduler.config);
    const timesteps = settings.sigmas ? { sigmas: settings.sigmas } : settings.steps;
    scheduler.setTimesteps(timesteps);

    // 3. Conditioning of the guidance batch: unconditional (zeros) first, as diffusers orders it.
    const cfg = settings.maxGuidance > 1;
    const B = cfg ? 2 : 1;
    const embDim = embedding.length;
    const ehs = new Float32Array(B * embDim);
    ehs.set(embedding, (B - 1) * embDim);
    const ids = new Float32Array(B * 3);
    for (let b = 0; b < B; b++) ids.set([settings.fps - 1, settings.motionBucket, settings.noiseAug], b * 3);

    // 4. Initial latents and the denoising loop with guidance.
    const unetSession = this.pool.get('unet');
    const steps = scheduler.numInferenceSteps;
    const loopStart = performance.now();
    let unetRunMs = 0;
    const latents = await denoise({
      scheduler,
      dims: a.dims,
      imageLatent: latent,
      initialNoise: a.initialNoise,
      guidance: cfg ? linspace(settings.minGuidance, settings.maxGuidance, F) : undefined,
      split: a.plan.guidanceBatch === 'split',
      stepNoise: a.stepNoise,
      buffers: this.denoiseBuffers,
      threads: { pool: this.stepThreads, scheduler: this.model.scheduler.config, timesteps },
      unet: async (sample, from, n, i) => {
        const t = performance.now();
        const out = (
          await unetSession.run({
            sample: new ort.Tensor('float32', sample, [n, F, 2 * C, h, w]),
            timestep: new ort.Tensor('float32', Float32Array.of(scheduler.timesteps[i]!), [1]),
            encoder_hidden_states: new ort.Tensor('float32', ehs.subarray(from * embDim, (from + n) * embDim), [n, 1, embDim]),
            added_time_ids: new ort.Tensor('float32', ids.subarray(from * 3, (from + n) * 3), [n, 3]),
          })
        ).model_output!.data as Float32Array;
        unetRunMs += performance.now() - t;
        return out;
      },
      checkCancelled: a.checkCancelled,
      previews: opts.onPreview !== undefined,
      onStep: (i, denoised) => {
        if (denoised) opts.onPreview!(denoised, { frames: F, channels: C, height: h, width: w });
        const elapsedMs = performance.now() - loopStart;
        opts.onProgress?.({ stage: 'sampling', step: i + 1, steps, elapsedMs, etaMs: (elapsedMs / (i + 1)) * (steps - i - 1) });
      },
    });
    return { latents, unetRunMs };
  }

  /** Latents [F, C, h, w] → frames [F, H, W, 3] in [0, 1] and their 8-bit RGB, a chunk of contiguous frames at a time (the latents are scaled in place). */
  private async decode(
    latents: Float32Array,
    d: LatentDims,
    plan: JobPlan,
    floatFrames: boolean,
    checkCancelled: () => void,
    onProgress?: (e: ProgressEvent) => void,
  ): Promise<{ frames?: Float32Array; rgb: Uint8Array }> {
    const { F, W, H, C, h, w } = d;
    const frameSize = C * h * w;
    // In place: the sampler's array has no other use.
    const unscaled = unscaleLatents(latents, this.model.vae.config.scaling_factor);
    const chunk = plan.decodeChunk;
    const chunks = Math.ceil(F / chunk);
    const frames = floatFrames ? new Float32Array(F * H * W * 3) : undefined;
    const rgb = new Uint8Array(F * H * W * 3);
    const HW = H * W;
    for (let k = 0; k < chunks; k++) {
      checkCancelled();
      onProgress?.({ stage: 'decoding', chunk: k + 1, chunks });
      const from = k * chunk;
      const n = Math.min(chunk, F - from);
      const session = await this.pool.decoder(n, plan.decoderPerShape);
      const feeds = { latents: new ort.Tensor('float32', unscaled.slice(from * frameSize, (from + n) * frameSize), [n, C, h, w]) };
      // The decoder graph postprocesses on the device (vae.ts): only copies are left here.
      const out = await session.run(feeds, frames ? undefined : ['rgb']);
      frames?.set(out.video!.data as Float32Array, from * HW * 3);
      rgb.set(out.rgb!.data as Uint8Array, from * HW * 3);
    }
    return { frames, rgb };
  }
}

interface LatentDims {
  F: number;
  W: number;
  H: number;
  /** Latent channels, height and width. */
  C: number;
  h: number;
  w: number;
}

function isOutOfMemory(err: unknown): boolean {
  return err instanceof Error && OUT_OF_MEMORY.test(err.message);
}

/**
 * latents / scaling_factor as diffusers' `1 / scaling_factor * latents` (times the float32
 * reciprocal), in place. A plain loop: Float32Array.from with a map function calls it through
 * the iterator protocol, a slow way through a video of latents (BENCHMARKS.md, host work between
 * UNet runs).
 */
export function unscaleLatents(latents: Float32Array, scalingFactor: number): Float32Array {
  const inv = f(1 / scalingFactor);
  for (let i = 0; i < latents.length; i++) latents[i] = f(latents[i]! * inv);
  return latents;
}

/** torch.linspace in float32: the first half counts up from start, the second down from end. */
export function linspace(start: number, end: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const step = f((end - start) / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? f(start + f(step * i)) : f(end - f(step * (n - 1 - i)));
  return out;
}

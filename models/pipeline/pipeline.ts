// Stable Video Diffusion image-to-video sampling, following diffusers'
// StableVideoDiffusionPipeline.__call__ step by step (see docs in README).
import * as ort from 'onnxruntime-node';
import { convertModel, type ConvertEvent } from '../convert.js';
import type { SvdModelDir } from '../model-dir.js';
import type { NetworkName } from '../build.js';
import type { AttentionImpl, GraphDType } from '../onnx/graph-builder.js';
import { vaeScaleFactor } from '../networks/vae.js';
import { clipPixelValues, rgbToSigned } from './clip-preprocess.js';
import type { RgbImage } from './prepare-image.js';
import { NormalGenerator, randomSeed } from './random.js';
import { bufferCacheFor, graphFormsFor, resolveGpuMemoryMode, resolveProvider, sessionOptions, type GpuMemoryMode, type Provider, type ProviderChoice, type ProviderResolution } from './runtime.js';
import { EulerKarrasScheduler } from './scheduler.js';
import type { GenerationSettings } from './settings.js';

const f = Math.fround;

export type ProgressEvent =
  | { stage: 'loading'; message: string }
  | { stage: 'encoding' }
  | { stage: 'sampling'; step: number; steps: number; elapsedMs: number; etaMs: number }
  | { stage: 'decoding'; chunk: number; chunks: number }
  | { stage: 'done'; elapsedMs: number };

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
  onProgress?: (e: ProgressEvent) => void;
}

export interface NoiseOverride {
  /** [1, 3, H, W] noise for the conditioning image (replaces the first random draw). */
  condAug?: Float32Array;
  /** [1, F, 4, h, w] initial latent noise before scaling by the initial sigma. */
  initial?: Float32Array;
}

export interface GenerateOptions {
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  noise?: NoiseOverride;
  /** After each step: the current estimate of the clean latents, [F, C, h, w], for previews. */
  onPreview?: (denoised: Float32Array, dims: { frames: number; channels: number; height: number; width: number }) => void;
}

export interface GenerateResult {
  /** [F, H, W, 3] in [0, 1], before 8-bit conversion. */
  frames: Float32Array;
  /** [F, H, W, 3] 8-bit RGB. */
  rgb: Uint8Array;
  frameCount: number;
  width: number;
  height: number;
  fps: number;
  seed: number;
  provider: Provider;
  dtype: GraphDType;
  /** loadMs: opening sessions inside this job (WebGPU 'fast' mode reopens each stage's networks). */
  timings: { loadMs: number; encodeMs: number; sampleMs: number; decodeMs: number; totalMs: number };
}

export class GenerationCancelled extends Error {
  constructor() {
    super('generation cancelled');
    this.name = 'GenerationCancelled';
  }
}

type Sessions = Partial<Record<NetworkName, ort.InferenceSession>>;

export class SvdPipeline {
  private sessions: Sessions = {};
  private released = false;

  private constructor(
    readonly model: SvdModelDir,
    readonly resolution: ProviderResolution,
    readonly dtype: GraphDType,
    private readonly files: Record<NetworkName, string>,
    /** WebGPU's memory mode; undefined on other providers. */
    readonly gpuMemory: 'fast' | 'lean' | undefined,
    readonly layout: { guidanceBatch: 'joint' | 'split'; sessions: 'shared' | 'separate' },
  ) {}

  get provider(): Provider {
    return this.resolution.provider;
  }

  get defaultFrames(): number {
    return this.model.unet.config.num_frames;
  }

  static async load(modelDir: string, opts: LoadOptions = {}): Promise<SvdPipeline> {
    const say = (message: string) => opts.onProgress?.({ stage: 'loading', message });
    const resolution = await resolveProvider(opts.provider ?? 'auto');
    for (const s of resolution.skipped) say(`provider ${s.provider} unavailable: ${s.reason}`);
    say(`using provider ${resolution.provider}`);
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
    return SvdPipeline.create(model, files, resolution, dtype, say, { gpuMemory: opts.gpuMemory, guidanceBatch: opts.guidanceBatch, sessions: opts.sessions });
  }

  /** Opens sessions for already-built network files (the benchmark builds random-weight ones). */
  static async create(
    model: SvdModelDir,
    files: Record<NetworkName, string>,
    resolution: ProviderResolution,
    dtype: GraphDType,
    say: (message: string) => void = () => {},
    opts: Pick<LoadOptions, 'gpuMemory' | 'guidanceBatch' | 'sessions'> = {},
  ): Promise<SvdPipeline> {
    const gpuMemory = resolution.provider === 'webgpu' ? await resolveGpuMemoryMode(opts.gpuMemory ?? 'auto') : undefined;
    if (gpuMemory) say(`WebGPU memory mode ${gpuMemory}`);
    const p = new SvdPipeline(model, resolution, dtype, files, gpuMemory, {
      guidanceBatch: opts.guidanceBatch ?? (gpuMemory === 'lean' ? 'split' : 'joint'),
      sessions: opts.sessions ?? (gpuMemory === 'fast' ? 'separate' : 'shared'),
    });
    try {
      // All four open once here, so a broken model fails at load rather than in the first job.
      await p.open(Object.keys(files) as NetworkName[], say);
      if (p.layout.sessions === 'separate') await p.closeAll(); // each job opens what its stage needs
    } catch (err) {
      await p.release();
      throw err;
    }
    return p;
  }

  /**
   * In 'fast' WebGPU mode the provider's buffer cache lives as long as any session is open on the
   * device: encoding, sampling and decoding each open only their own networks, and everything is
   * closed between them, so no stage shares the card with another's cached buffers. Elsewhere all
   * four stay open.
   */
  private async enterStage(networks: readonly NetworkName[], say: (message: string) => void): Promise<number> {
    const t = performance.now();
    if (this.layout.sessions === 'separate') {
      const open = Object.keys(this.sessions);
      if (open.length !== networks.length || !networks.every((n) => this.sessions[n])) {
        if (open.length) say(`closing ${open.join(', ')} to free the GPU memory held for ${open.length > 1 ? 'them' : 'it'}`);
        await this.closeAll();
      }
      await this.open(networks, say);
    } else {
      await this.open(Object.keys(this.files) as NetworkName[], say);
    }
    return performance.now() - t;
  }

  private async open(networks: readonly NetworkName[], say: (message: string) => void = () => {}): Promise<void> {
    if (this.released) throw new Error('pipeline already released');
    for (const network of networks) {
      if (this.sessions[network]) continue;
      say(`loading ${network}`);
      this.sessions[network] = await ort.InferenceSession.create(this.files[network], sessionOptions(this.provider, this.gpuMemory ? { webgpuCache: bufferCacheFor(this.gpuMemory) } : {}));
    }
  }

  private async closeAll(): Promise<void> {
    const open = Object.values(this.sessions);
    this.sessions = {};
    await Promise.all(open.map((s) => s.release()));
  }

  private session(network: NetworkName): ort.InferenceSession {
    const s = this.sessions[network];
    if (!s) throw new Error(this.released ? 'pipeline already released' : `${network} is not open`);
    return s;
  }

  async release(): Promise<void> {
    this.released = true;
    await this.closeAll();
  }

  /** Latents [F, C, h, w] → frames [F, H, W, 3] in [0, 1], a chunk of contiguous frames at a time. */
  private async decode(
    latents: Float32Array,
    d: { F: number; W: number; H: number; latentC: number; h: number; w: number; decodeChunk: number },
    checkCancelled: () => void,
    onProgress?: (e: ProgressEvent) => void,
  ): Promise<Float32Array> {
    const { F, W, H, latentC, h, w } = d;
    const frameSize = latentC * h * w;
    const inv = f(1 / this.model.vae.config.scaling_factor);
    const unscaled = Float32Array.from(latents, (x) => f(x * inv));
    const chunk = Math.min(d.decodeChunk, F, this.maxDecodeChunk(W, H));
    if (chunk < Math.min(d.decodeChunk, F)) onProgress?.({ stage: 'loading', message: `decoding ${chunk} frames at a time (the ${this.provider} provider cannot hold ${d.decodeChunk} at ${W}x${H})` });
    const chunks = Math.ceil(F / chunk);
    const frames = new Float32Array(F * H * W * 3);
    for (let k = 0; k < chunks; k++) {
      checkCancelled();
      onProgress?.({ stage: 'decoding', chunk: k + 1, chunks });
      const from = k * chunk;
      const n = Math.min(chunk, F - from);
      const decoded = (
        await this.session('vae_decoder').run({ latents: new ort.Tensor('float32', unscaled.slice(from * frameSize, (from + n) * frameSize), [n, latentC, h, w]) })
      ).frames!.data as Float32Array;
      for (let fi = 0; fi < n; fi++) {
        for (let c = 0; c < 3; c++) {
          const src = (fi * 3 + c) * H * W;
          const dst = (from + fi) * H * W * 3;
          for (let p = 0; p < H * W; p++) frames[dst + p * 3 + c] = Math.min(1, Math.max(0, f(f(decoded[src + p]! * 0.5) + 0.5)));
        }
      }
    }
    return frames;
  }

  /**
   * WebGPU fails a convolution whose output passes about 2 GiB (seen on an H100 with 8 frames of
   * 256 channels at 1024x576). The decoder runs its widest full-resolution layers on half a chunk
   * at a time (inFrameHalves), so a chunk is capped where either half of the wide layers or the
   * whole chunk at the final width would pass 1.9 GB: 12 frames at 1024x576. Other providers take
   * any size.
   */
  maxDecodeChunk(width: number, height: number): number {
    if (this.provider !== 'webgpu') return Number.POSITIVE_INFINITY;
    const ch = this.model.vae.config.block_out_channels;
    const bytes = (channels: number) => channels * width * height * (this.dtype === 'float16' ? 2 : 4);
    const limit = 1.9e9;
    const final = Math.floor(limit / bytes(ch[0]!));
    const wide = ch.length > 1 ? 2 * Math.floor(limit / bytes(ch[1]!)) : final;
    return Math.max(1, Math.min(final, wide));
  }

  /** `image` must already have the target size (see prepareImage). */
  async generate(image: RgbImage, settings: GenerationSettings, opts: GenerateOptions = {}): Promise<GenerateResult> {
    try {
      return await this.run(image, settings, opts);
    } finally {
      // With separate stages nothing stays open between jobs (or after a failed or cancelled one),
      // so an idle server leaves the card free.
      if (this.layout.sessions === 'separate') await this.closeAll();
    }
  }

  private async run(image: RgbImage, settings: GenerationSettings, opts: GenerateOptions): Promise<GenerateResult> {
    const started = performance.now();
    const { signal, onProgress } = opts;
    const checkCancelled = () => {
      if (signal?.aborted) throw new GenerationCancelled();
    };
    const { width: W, height: H } = image;
    if (W !== settings.width || H !== settings.height) throw new Error(`image is ${W}x${H} but the settings ask for ${settings.width}x${settings.height}; frame it first`);
    const F = settings.frames ?? this.defaultFrames;
    const scale = vaeScaleFactor(this.model.vae.config);
    const [h, w] = [H / scale, W / scale];
    const latentC = this.model.vae.config.latent_channels;
    const seed = settings.seed ?? randomSeed();
    const rng = new NormalGenerator(seed);
    const checkNoise = (name: string, data: Float32Array | undefined, n: number) => {
      if (data && data.length !== n) throw new Error(`${name} noise has ${data.length} values, expected ${n}`);
      return data;
    };
    const condNoise = checkNoise('conditioning', opts.noise?.condAug, 3 * H * W) ?? rng.normals(3 * H * W);
    const initialNoise = checkNoise('initial', opts.noise?.initial, F * latentC * h * w) ?? rng.normals(F * latentC * h * w);

    const say = (message: string) => onProgress?.({ stage: 'loading', message });
    let loadMs = await this.enterStage(['image_encoder', 'vae_encoder'], say);

    // 1. Conditioning: CLIP embedding of the clean image, VAE latent of the noise-augmented one.
    onProgress?.({ stage: 'encoding' });
    const fe = this.model.featureExtractor.config;
    const clipSize = this.model.imageEncoder.config.image_size;
    const clip = clipPixelValues(image.data, W, H, clipSize, fe.image_mean, fe.image_std);
    const emb = (await this.session('image_encoder').run({ pixel_values: new ort.Tensor('float32', clip, [1, 3, clipSize, clipSize]) })).image_embeds!.data as Float32Array;
    const embDim = emb.length;
    const vaeIn = rgbToSigned(image.data, W, H).data;
    for (let i = 0; i < vaeIn.length; i++) vaeIn[i] = f(vaeIn[i]! + f(settings.noiseAug * condNoise[i]!));
    const latent = (await this.session('vae_encoder').run({ image: new ort.Tensor('float32', vaeIn, [1, 3, H, W]) })).latent!.data as Float32Array;
    const encodeMs = performance.now() - started - loadMs;
    checkCancelled();

    // 2. Schedule and initial latents.
    const scheduler = new EulerKarrasScheduler(this.model.scheduler.config);
    scheduler.setTimesteps(settings.sigmas ? { sigmas: settings.sigmas } : settings.steps);
    const sigma0 = f(scheduler.initNoiseSigma);
    let latents: Float32Array = Float32Array.from(initialNoise, (v) => f(v * sigma0));

    // 3. Guidance batch: unconditional (zeros) first, as diffusers orders it.
    const cfg = settings.maxGuidance > 1;
    const B = cfg ? 2 : 1;
    const frameSize = latentC * h * w;
    const ehs = new Float32Array(B * embDim);
    ehs.set(emb, (B - 1) * embDim);
    const ids = new Float32Array(B * 3);
    for (let b = 0; b < B; b++) ids.set([settings.fps - 1, settings.motionBucket, settings.noiseAug], b * 3);
    const guidance = linspace(settings.minGuidance, settings.maxGuidance, F);
    const sampleIn = new Float32Array(B * F * 2 * frameSize);
    // Image-latent half of the UNet input never changes: fill it once.
    for (let f_ = 0; f_ < F; f_++) sampleIn.set(latent, ((B - 1) * F + f_) * 2 * frameSize + frameSize);

    loadMs += await this.enterStage(['unet'], say);
    const steps = scheduler.numInferenceSteps;
    const loopStart = performance.now();
    const scaled = new Float32Array(latents.length);
    for (let i = 0; i < steps; i++) {
      checkCancelled();
      scheduler.scaleModelInput(latents, i, scaled);
      for (let b = 0; b < B; b++) for (let f_ = 0; f_ < F; f_++) sampleIn.set(scaled.subarray(f_ * frameSize, (f_ + 1) * frameSize), (b * F + f_) * 2 * frameSize);
      const timestep = new ort.Tensor('float32', Float32Array.of(scheduler.timesteps[i]!), [1]);
      const unet = async (from: number, n: number) =>
        (
          await this.session('unet').run({
            sample: new ort.Tensor('float32', sampleIn.subarray(from * F * 2 * frameSize, (from + n) * F * 2 * frameSize), [n, F, 2 * latentC, h, w]),
            timestep,
            encoder_hidden_states: new ort.Tensor('float32', ehs.subarray(from * embDim, (from + n) * embDim), [n, 1, embDim]),
            added_time_ids: new ort.Tensor('float32', ids.subarray(from * 3, (from + n) * 3), [n, 3]),
          })
        ).model_output!.data as Float32Array;
      let out: Float32Array;
      if (this.layout.guidanceBatch === 'split' && B === 2) {
        // One video at a time: the same results with half the UNet's activations on the GPU
        // ('lean' does this: H100, 14.5 s per step and 8 GB instead of 16.6 s and 14 GB; in 'fast'
        // mode it would cost 3%, 7.28 vs 7.08 s, for 20 GB instead of 37).
        out = new Float32Array(2 * F * frameSize);
        out.set(await unet(0, 1), 0);
        out.set(await unet(1, 1), F * frameSize);
      } else {
        out = await unet(0, B);
      }
      let v: Float32Array = out;
      if (cfg) {
        v = new Float32Array(F * frameSize);
        for (let f_ = 0; f_ < F; f_++) {
          const g = guidance[f_]!;
          for (let k = 0; k < frameSize; k++) {
            const idx = f_ * frameSize + k;
            const u = out[idx]!;
            v[idx] = f(u + f(g * f(out[F * frameSize + idx]! - u)));
          }
        }
      }
      const denoised = opts.onPreview ? new Float32Array(latents.length) : undefined;
      latents = scheduler.step(v, i, latents, denoised);
      if (denoised) opts.onPreview!(denoised, { frames: F, channels: latentC, height: h, width: w });
      const elapsedMs = performance.now() - loopStart;
      onProgress?.({ stage: 'sampling', step: i + 1, steps, elapsedMs, etaMs: (elapsedMs / (i + 1)) * (steps - i - 1) });
    }
    const sampleMs = performance.now() - loopStart;

    // 4. Decode in chunks of contiguous frames; the temporal layers see one chunk at a time.
    const decodeStart = performance.now();
    const decodeLoadMs = await this.enterStage(['vae_decoder'], say);
    loadMs += decodeLoadMs;
    const frames = await this.decode(latents, { F, W, H, latentC, h, w, decodeChunk: settings.decodeChunk }, checkCancelled, onProgress);
    const rgb = new Uint8Array(frames.length);
    for (let i = 0; i < frames.length; i++) rgb[i] = roundHalfEven(f(frames[i]! * 255));
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
      timings: { loadMs, encodeMs, sampleMs, decodeMs: performance.now() - decodeStart - decodeLoadMs, totalMs },
    };
  }
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

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
